package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

const usageHead = `Usage: tetherd [flags]

tetherd is the tether gateway. It keeps long-lived gRPC sessions alive and
routes messages between them: tether.v1.TetherService, AdminService,
grpc.health.v1 and server reflection on --listen; /healthz, /readyz,
/metrics, /debug/sessions and the web console (/console/) over HTTP on
--admin-listen. SIGTERM or SIGINT drains it: sessions get a go_away and
resume on another backend.

Examples:

  # Serve on the defaults: gRPC on 127.0.0.1:7070, admin on 127.0.0.1:9090.
  tetherd
  grpcurl -plaintext 127.0.0.1:7070 list

  # Serve TLS on every interface, for mobile clients, logging JSON.
  tetherd --listen :7070 --admin-listen :9090 --tls-cert cert.pem --tls-key key.pem \
      --profile mobile --log-format json

  # Plaintext beyond loopback, behind a load balancer that terminates TLS.
  tetherd --listen 0.0.0.0:7070 --insecure

  # One node of many, sharing a NATS cluster with JetStream.
  tetherd --broker nats --nats-url nats://nats-1:4222,nats://nats-2:4222 --nats-replicas 3

  # Settings from the environment and a config file; no admin server.
  TETHER_SERVER_ID=edge-1 tetherd --config /etc/tether/tetherd.conf --admin-listen=

  # The settings in effect (secrets redacted), in the config file format.
  tetherd --config /etc/tether/tetherd.conf --print-config

Rate limits, per principal (per peer address without --tokens-file), guard
the node against a client that reconnects or calls in a loop, not against an
honest service's volume: stream opens, AdminService and other calls share
--rate (50/s, bursts of 100), which no device needs more of; Publish has a
bucket of its own, --publish-rate (10,000/s, bursts of 20,000), so that a
backend publishing for many users is not held back, while a client calling
in a loop is still bounded (one node serves 12,000 to 30,000 Publish
calls/s on 2 vCPUs); a principal with "rate_exempt": true in --tokens-file (a service you
run) is never limited. A call over a limit ends with RESOURCE_EXHAUSTED and
a RetryInfo detail saying when to retry. Inside a session, a stream that
sends frames faster than --frame-rate is read more slowly, never cut.

Each flag can also be set by an environment variable (TETHER_ and the flag
name in upper case with - as _, shown below) or by a line of the --config
file ("server-id edge-1"; # starts a comment; "" is an empty value; a file
that starts with { is read as a JSON object; deploy/tetherd.conf in the
repository is an annotated example). A flag wins over the environment,
which wins over the file. An error names the flag, the variable or the
file and line.

Flags:
`

// printUsage writes the help text: what tetherd does, examples, and every
// flag with its environment variable and default.
func printUsage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	fs := newFlagSet(&config{})
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n        %s\n        (%s", line, help, envName(f.Name))
		if def := defaultText(f); def != "" {
			fmt.Fprintf(w, ", default %s", def)
		}
		fmt.Fprint(w, ")\n")
	})
}

// envName is the environment variable of a flag, as ff derives it.
func envName(flagName string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// defaultText shows a flag's default, or "" when it has none worth showing.
func defaultText(f *flag.Flag) string {
	if f.DefValue == "false" {
		return ""
	}
	return f.DefValue
}
