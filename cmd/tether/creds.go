package main

import (
	"context"
	"crypto/tls"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/loopback"
)

// Environment variables for the credentials, read when the flag is not
// given.
const envTokenFile = "TETHER_TOKEN_FILE" // --token-file

// credFlags are the global flags for transport security and the bearer
// token, resolved by resolve.
type credFlags struct {
	tls        bool
	tlsCA      string
	tlsCert    string
	tlsKey     string
	serverName string
	token      string // --token, else the --token-file's content, else $TETHER_TOKEN
	tokenFile  string
	insecure   bool

	tlsConfig *tls.Config // nil: plaintext
}

// define adds the flags to a command's persistent flags.
func (c *credFlags) define(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.BoolVar(&c.tls, "tls", false, "connect over TLS, verifying the server against the system's CA certificates (implied by the other --tls- flags)")
	pf.StringVar(&c.tlsCA, "tls-ca", "", "verify the server against the PEM CA certificates in this `file` instead of the system's")
	pf.StringVar(&c.tlsCert, "tls-cert", "", "present this PEM client certificate `file` (mTLS, for a tetherd with --client-ca); needs --tls-key")
	pf.StringVar(&c.tlsKey, "tls-key", "", "PEM private key `file` for --tls-cert")
	pf.StringVar(&c.serverName, "tls-server-name", "", "expect this `name` in the server's certificate (default: the host of --addr)")
	pf.StringVar(&c.token, "token", "", "bearer `token` sent on every call as \"authorization: Bearer TOKEN\" (default $"+envToken+"; prefer it or --token-file: a flag shows in ps)")
	pf.StringVar(&c.tokenFile, "token-file", "", "read the bearer token from this `file` (surrounding white space is ignored) (default $"+envTokenFile+")")
	pf.BoolVar(&c.insecure, "insecure", false, "allow sending the token in plaintext beyond loopback (only where the network encrypts, such as a service mesh)")
}

// resolve applies the environment fallbacks, reads the token file, loads
// the TLS files and refuses a token in plaintext beyond loopback.
func (c *credFlags) resolve(ctx context.Context, cmd *cobra.Command, addrs []string) error {
	changed := cmd.Flags().Changed
	if !changed("token-file") {
		c.tokenFile = os.Getenv(envTokenFile)
	}
	switch {
	case changed("token") && c.tokenFile != "":
		return usagef("--token and --token-file: give one, not both")
	case c.tokenFile != "":
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return usagef("--token-file: %w", err)
		}
		if c.token = strings.TrimSpace(string(b)); c.token == "" {
			return usagef("--token-file %s: the file is empty", c.tokenFile)
		}
	case !changed("token"):
		c.token = os.Getenv(envToken)
	}
	if err := c.loadTLS(); err != nil {
		return err
	}
	if c.token == "" || c.tlsConfig != nil || c.insecure {
		return nil
	}
	for _, addr := range addrs {
		local, err := loopback.Addr(ctx, addr)
		if err != nil {
			return usagef("--addr %q: %w", addr, err)
		}
		if !local {
			return usagef("--addr %s is not a loopback address: refusing to send the token there in plaintext; "+
				"add --tls (with --tls-ca for a private CA), or --insecure if the network encrypts for you", addr)
		}
	}
	return nil
}

// loadTLS builds tlsConfig when any --tls flag is given.
func (c *credFlags) loadTLS() error {
	if !c.tls && c.tlsCA == "" && c.tlsCert == "" && c.tlsKey == "" && c.serverName == "" {
		c.tlsConfig = nil
		return nil
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together: give both or neither")
	}
	cfg, err := client.NewTLSConfig(c.tlsCA, c.tlsCert, c.tlsKey)
	if err != nil {
		return usagef("--tls-ca/--tls-cert/--tls-key: %w", err)
	}
	cfg.ServerName = c.serverName
	c.tlsConfig = cfg
	return nil
}

// transport is the gRPC transport credentials: TLS or plaintext.
func (c *credFlags) transport() credentials.TransportCredentials {
	if c.tlsConfig != nil {
		return credentials.NewTLS(c.tlsConfig)
	}
	return insecure.NewCredentials()
}

// sessionOptions are the SDK options for the credentials.
func (c *credFlags) sessionOptions() []client.Option {
	var opts []client.Option
	if c.tlsConfig != nil {
		opts = append(opts, client.WithTLS(c.tlsConfig))
	}
	if c.token != "" {
		opts = append(opts, client.WithToken(c.token))
	}
	if c.insecure {
		opts = append(opts, client.WithInsecure())
	}
	return opts
}
