package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/internal/frames"
	"github.com/tetherhq/tether/internal/version"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // bad flags or arguments
)

// defaultAddr is tetherd's default --listen.
const defaultAddr = "127.0.0.1:7070"

// Environment variables read when the flag is not given.
const (
	envAddr  = "TETHER_ADDR"  // --addr, comma-separated
	envToken = "TETHER_TOKEN" // --token
)

// usageError is a mistake in the flags or arguments: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// app is one run of tether: its streams and the global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	addrFlag []string
	addrs    []string // --addr, else $TETHER_ADDR, else defaultAddr
	creds    credFlags
	timeout  time.Duration

	// ran is set when a command's own code starts; an error before that
	// (cobra's flag and argument checks) is a usage error.
	ran bool
}

// run is tether: it runs the command args names until it is done or ctx
// ends, reports errors on stderr and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if cmd == nil {
		cmd = root
	}
	msg := strings.TrimRight(err.Error(), "\n")
	var u usageError
	if !a.ran || errors.As(err, &u) {
		fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", cmd.CommandPath(), msg, cmd.CommandPath())
		return exitUsage
	}
	fmt.Fprintf(stderr, "%s: %s\n", cmd.CommandPath(), msg)
	return exitFailure
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "tether",
		Short: "Hold a tether session, publish messages, lend a session to local processes, answer requests and inspect sessions",
		Long: `tether talks to tether servers (tetherd): it holds a session and prints
every event as a JSON line (connect), publishes a message (publish), lends
one session to short-lived local processes over a Unix socket (agent),
answers the requests sent to a topic with a shell command (reply), and
lists, shows and closes sessions (sessions).

--addr defaults to $` + envAddr + ` (comma-separated) or ` + defaultAddr + `;
--token to $` + envToken + ` or the content of --token-file ($` + envTokenFile + `),
sent as "authorization: Bearer TOKEN" (prefer them to --token: a flag shows
in ps). Connections are plaintext unless a --tls flag is given: --tls
verifies the server against the system's CA certificates, --tls-ca against
a private CA, --tls-cert and --tls-key present a client certificate (mTLS),
and --tls-server-name names the certificate's host when --addr does not. A
token is never sent in plaintext beyond loopback (--insecure allows it
where the network encrypts).

Exit status: 0 ok, 1 the command failed, 2 bad flags or arguments.`,
		Example: `  # Hold a session and print its events; Ctrl-C closes it.
  tether connect --addr 127.0.0.1:7070 --client-id dev1 --topic news

  # Send it a message.
  tether publish --addr 127.0.0.1:7070 --client-id dev1 --data hi

  # See the sessions on a node.
  tether sessions list --addr 127.0.0.1:7070

  # A production node: TLS with a private CA, a token from a file.
  tether connect --addr tether.example.com:7070 --tls-ca ca.pem --token-file ~/.tether-token --client-id dev1

  # Answer requests to svc.echo; call it through an agent with curl.
  tether reply svc.echo --command 'tr a-z A-Z' &
  tether agent --socket /tmp/tether.sock &
  curl --unix-socket /tmp/tether.sock --json '{"topic":"svc.echo","payload":"hi"}' http://agent/v1/request`,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE:          groupRunE,
		Version:       version.Get().String(),
	}
	root.SetVersionTemplate("tether {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		if strings.Contains(cmd.Use, "SESSION_ID") && strings.Contains(err.Error(), "unknown shorthand flag") {
			// Session ids are base64url: one in 64 starts with "-".
			err = fmt.Errorf("%w (a session id that starts with \"-\" goes after \"--\": %s -- SESSION_ID)", err, cmd.CommandPath())
		}
		return usageError{err}
	})
	// Commands that group others run only to report a missing or unknown
	// command: show them as "tether sessions [command]", not as runnable.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	pf := root.PersistentFlags()
	pf.StringArrayVar(&a.addrFlag, "addr", nil, "server `host:port`; repeat it, or separate with commas, for several (connect picks among the healthy ones) (default $"+envAddr+" or "+defaultAddr+")")
	a.creds.define(root)
	pf.DurationVar(&a.timeout, "timeout", 10*time.Second, "bound for each unary call, and for closing a connect session")
	root.AddCommand(a.connectCmd(), a.publishCmd(), a.sessionsCmd(), a.agentCmd(), a.replyCmd(), a.versionCmd())
	return root
}

// groupRunE runs for a command that only groups others: it names what is
// missing or unknown.
func groupRunE(cmd *cobra.Command, args []string) error {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() && c.Name() != "help" && c.Name() != "completion" {
			names = append(names, c.Name())
		}
	}
	if len(args) > 0 {
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
		}
		return usageError{errors.New(msg)}
	}
	return usagef("missing command: give one of %s", strings.Join(names, ", "))
}

// runE wraps a command's code: it marks the run as started and resolves
// the global flags first.
func (a *app) runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.ran = true
		if err := a.resolveGlobals(cmd); err != nil {
			return err
		}
		return f(cmd, args)
	}
}

// resolveGlobals applies the environment fallbacks and checks the global
// flags.
func (a *app) resolveGlobals(cmd *cobra.Command) error {
	if a.timeout <= 0 {
		return usagef("--timeout %v: must be positive", a.timeout)
	}
	raw := a.addrFlag
	if !cmd.Flags().Changed("addr") {
		raw = []string{defaultAddr}
		if v, ok := os.LookupEnv(envAddr); ok && v != "" {
			raw = []string{v}
		}
	}
	a.addrs = nil
	for _, v := range raw {
		for _, addr := range strings.Split(v, ",") {
			if addr = strings.TrimSpace(addr); addr == "" {
				return usagef("--addr %q: empty address", v)
			}
			a.addrs = append(a.addrs, addr)
		}
	}
	return a.creds.resolve(cmd.Context(), cmd, a.addrs)
}

// exactlyOneArg accepts one positional argument, named in the error.
func exactlyOneArg(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usagef("want one argument, %s; got %d", name, len(args))
		}
		return nil
	}
}

// dial returns a client connection to the one --addr, for unary calls.
func (a *app) dial() (*grpc.ClientConn, error) {
	if len(a.addrs) != 1 {
		return nil, usagef("--addr: this command talks to one server; got %d (%s)", len(a.addrs), strings.Join(a.addrs, ", "))
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(a.creds.transport())}
	if a.creds.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(a.creds.token)))
	}
	cc, err := grpc.NewClient(a.addrs[0], opts...)
	if err != nil {
		return nil, usagef("--addr %q: %w", a.addrs[0], err)
	}
	return cc, nil
}

// callCtx bounds one unary call by --timeout.
func (a *app) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.timeout)
}

// rpcError describes a failed call to addr: the gRPC code and message.
func rpcError(addr, what string, err error) error {
	if size, limit, ok := frames.TooLarge(err); ok {
		return fmt.Errorf("%s on %s: the request of %d bytes is larger than the server accepts: %d bytes, the payload limit "+
			"(tetherd --max-message-bytes, which welcome.limits.maxMessageBytes announces) plus %d for the frame; "+
			"split the payload, or raise --max-message-bytes on the server", what, addr, size, frames.FrameLimit(limit), frames.Overhead)
	}
	if st, ok := status.FromError(err); ok {
		return fmt.Errorf("%s on %s: %s: %s", what, addr, st.Code(), st.Message())
	}
	return fmt.Errorf("%s on %s: %w", what, addr, err)
}

// bearer sends "authorization: Bearer TOKEN" on every call. It does not
// ask for transport security: resolve has refused plaintext beyond
// loopback.
type bearer string

func (t bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q: %s takes flags only", args[0], cmd.CommandPath())
	}
	return nil
}
