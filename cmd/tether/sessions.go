package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

func (a *app) sessionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List, show and close the sessions of a server node",
		Long: `sessions calls AdminService on one server node (--addr): list its sessions,
show one with its flight recorder, or close one for good. Output is one
JSON line per record (protojson: lowerCamelCase names, every field shown),
the shapes of tetherd's /debug/sessions. A session id that starts with "-"
goes after "--": tether sessions get -- -Xk2….`,
		Example: `  tether sessions list --addr 127.0.0.1:7070
  tether sessions list --client-id dev1
  tether sessions get 1b48480c4efbb3238390c90d39a9fd6d
  tether sessions close 1b48480c4efbb3238390c90d39a9fd6d --reason "device retired"`,
		RunE: groupRunE,
	}
	cmd.AddCommand(a.sessionsListCmd(), a.sessionsGetCmd(), a.sessionsCloseCmd())
	return cmd
}

// admin runs f with an AdminService client for --addr, within --timeout.
func (a *app) admin(ctx context.Context, what string, f func(context.Context, tetherv1.AdminServiceClient) error) error {
	cc, err := a.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := a.callCtx(ctx)
	defer cancel()
	if err := f(ctx, tetherv1.NewAdminServiceClient(cc)); err != nil {
		return rpcError(a.addrs[0], what, err)
	}
	return nil
}

func (a *app) sessionsListCmd() *cobra.Command {
	req := &tetherv1.ListSessionsRequest{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the node's sessions, newest first",
		Long: `list prints one page of the node's sessions, live and detached, newest
first, one JSON line (a SessionInfo) per session. When there are more, it
says so on stderr with the --page-token for the next page.`,
		Example: `  tether sessions list --addr 127.0.0.1:7070
  tether sessions list --client-id dev1
  tether sessions list --page-size 10 --page-token 10

  # The ids only.
  tether sessions list | jq -r .sessionId`,
		Args: noArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			var resp *tetherv1.ListSessionsResponse
			err := a.admin(cmd.Context(), "ListSessions", func(ctx context.Context, c tetherv1.AdminServiceClient) (err error) {
				resp, err = c.ListSessions(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			for _, s := range resp.GetSessions() {
				if err := writeProto(a.stdout, s); err != nil {
					return err
				}
			}
			if next := resp.GetNextPageToken(); next != "" {
				fmt.Fprintf(a.stderr, "%s: more sessions: add --page-token %s for the next page\n", cmd.CommandPath(), next)
			}
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&req.ClientId, "client-id", "", "only the sessions of this client `id`")
	fl.Uint32Var(&req.PageSize, "page-size", 0, "at most this many sessions (0: the server's default, 100; at most 1000)")
	fl.StringVar(&req.PageToken, "page-token", "", "the nextPageToken of the previous page")
	return cmd
}

func (a *app) sessionsGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get SESSION_ID",
		Short: "Show one session and its flight recorder",
		Long: `get prints one session and its flight recorder (its most recent events,
oldest first: connects, resumes, detaches, missed heartbeats, RTTs,
go_aways, errors) as a GetSessionResponse, on one JSON line.`,
		Example: `  tether sessions get 1b48480c4efbb3238390c90d39a9fd6d --addr 127.0.0.1:7070

  # The flight recorder only.
  tether sessions get 1b48480c4efbb3238390c90d39a9fd6d | jq -c '.events[] | [.time, .kind, .detail]'

  # An id that starts with "-" goes after "--".
  tether sessions get -- -Xk2bq7EoT0`,
		Args: exactlyOneArg("the session id"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			var resp *tetherv1.GetSessionResponse
			err := a.admin(cmd.Context(), "GetSession", func(ctx context.Context, c tetherv1.AdminServiceClient) (err error) {
				resp, err = c.GetSession(ctx, &tetherv1.GetSessionRequest{SessionId: args[0]})
				return err
			})
			if err != nil {
				return err
			}
			return writeProto(a.stdout, resp)
		}),
	}
}

// closeResult is what sessions close prints.
type closeResult struct {
	SessionID string `json:"session_id"`
	Closed    bool   `json:"closed"`
}

func (a *app) sessionsCloseCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "close SESSION_ID",
		Short: "Close a session for good",
		Long: `close ends a session for good: its stream gets a go_away
(GO_AWAY_REASON_CLOSED_BY_ADMIN, with --reason in its message) and the
session cannot be resumed. It prints {"session_id":"…","closed":true}.`,
		Example: `  tether sessions close 1b48480c4efbb3238390c90d39a9fd6d --addr 127.0.0.1:7070 --reason "device retired"

  # An id that starts with "-" goes after "--".
  tether sessions close --reason "device retired" -- -Xk2bq7EoT0`,
		Args: exactlyOneArg("the session id"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			err := a.admin(cmd.Context(), "CloseSession", func(ctx context.Context, c tetherv1.AdminServiceClient) error {
				_, err := c.CloseSession(ctx, &tetherv1.CloseSessionRequest{SessionId: args[0], Reason: reason})
				return err
			})
			if err != nil {
				return err
			}
			out := newLines(a.stdout)
			out.write(closeResult{SessionID: args[0], Closed: true})
			return out.failure()
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "`reason` shown to the client in the go_away and recorded")
	return cmd
}
