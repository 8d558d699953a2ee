// Tetherd is the standalone tether gateway. It keeps long-lived gRPC sessions
// alive and routes messages between them, built from the
// [github.com/tetherhq/tether/server] package.
//
// On its gRPC port (--listen, default 127.0.0.1:7070) it serves
// tether.v1.TetherService (Connect, the session stream, and Publish),
// tether.v1.AdminService, grpc.health.v1.Health and server reflection (v1
// and v1alpha, so grpcurl can list, describe and call everything). On its
// admin HTTP port (--admin-listen, default 127.0.0.1:9090; empty disables
// it) it serves:
//
//	/healthz         200 while the process runs
//	/readyz          200 while serving; 503 with the reason while draining
//	                 or while the broker is unavailable
//	/metrics         Prometheus: the tether_ series, Go runtime and process
//	/debug/sessions  the node's sessions as JSON (?client_id= filters)
//	/console/        the web console: the node, its sessions and their flight
//	                 recorders, live; kick a session, drain the node
//
// # Web console
//
// Open http://127.0.0.1:9090/console/ in a browser. The page and its script
// are embedded in the binary and fetch nothing from elsewhere. It shows the
// node (readiness, drain, broker health, the profile's numbers, sessions by
// state, resume outcomes per second), a sessions table filtered, sorted and
// paged by the server (so thousands of sessions cost one page), and one
// session: its fields, topics, RTT plot, unacked and queued counts, resume
// history and its flight recorder drawn as a timeline. Kick and drain ask
// for confirmation. Without TLS and --tokens-file, the console answers only
// requests from loopback to a loopback host name. Beyond loopback it asks
// for the bearer token of a principal with "admin" (everything) or
// "admin_read" (the views, without kick and drain); kick and drain are
// protected against cross-site requests. The Grafana dashboard in
// deploy/grafana is for a fleet; the console is for one node.
//
// # Configuration
//
// Every setting is a flag. Each flag can also be set by an environment
// variable, TETHER_ plus the flag name in upper case with "-" as "_"
// (TETHER_SERVER_ID for --server-id), or by a config file named by --config:
// one flag per line, the name, a space and the value ("server-id edge-1"),
// with # starting a comment; a file whose first character is "{" is read as
// a JSON object instead ({"server-id": "edge-1"}). A flag on the command
// line wins over the environment, which wins over the file; a value in
// double quotes is read as a Go string ("" is empty). deploy/tetherd.conf
// in the repository is an annotated example. Errors name the flag, the
// variable, or the file and line, with the bad value and what was
// expected. tetherd --print-config prints the settings in effect (secrets
// redacted) in the config file format and exits; the start log has them
// at INFO. tetherd --version prints the version, commit and Go version.
// Run tetherd -h for the full list.
//
// # Brokers
//
// A broker carries messages between sessions. With --broker memory, the
// default, it is embedded: tetherd needs no other service, but every node
// is on its own, and a session resumes only on the node that holds it.
// With --broker nats, nodes share a NATS system with JetStream: a message
// published on any node reaches its session, client id or topic on every
// node, and a session resumes on any node from the log JetStream keeps.
// The NATS settings:
//
//	--nats-url URLS        NATS servers, comma-separated (default nats://127.0.0.1:4222;
//	                       tls://host:port for TLS)
//	--nats-creds FILE      authenticate with a credentials file (JWT and seed)
//	--nats-nkey FILE       authenticate with an NKey seed file
//	--nats-user USER       authenticate with a user and --nats-password
//	--nats-token TOKEN     authenticate with a token
//	--nats-tls-ca FILE     trust this PEM CA for the NATS servers' certificates
//	--nats-tls-cert FILE   present a client certificate, with --nats-tls-key
//	--nats-prefix PREFIX   prefix of subjects and streams (default tether); tether
//	                       clusters sharing a NATS system need one each
//	--nats-replicas N      JetStream replicas (default 1; 3 on a NATS cluster to
//	                       survive losing a server)
//	--nats-retention D     how long messages are kept for resumes (default 10m);
//	                       at least --resume-window, or tetherd refuses to start
//	--nats-storage KIND    file (default) or memory
//	--nats-durability D    cluster (default: session logs in JetStream, resume on
//	                       any node, lose nothing) or node (logs in the holding
//	                       node's memory, no JetStream write per message; a resume
//	                       on another node loses what was unacknowledged and says
//	                       so in Welcome: RESUMED_WITH_GAP)
//
// Give at most one way to authenticate; pass secrets through the
// environment (TETHER_NATS_PASSWORD, TETHER_NATS_TOKEN) or the config file
// rather than on the command line, where other users of the host can see
// them. tetherd exits 1 if it cannot reach NATS at start. Once running, it
// rides out NATS outages: it reconnects on its own, logs "broker
// unavailable" (a warning, with the reason) and "broker available again",
// and meanwhile /readyz answers 503 with the reason and grpc.health.v1
// reports NOT_SERVING, so load balancers send new clients elsewhere. Every
// node needs its own --server-id; the default, the host name and a random
// suffix, is unique per process.
//
// # Plaintext beyond loopback
//
// tetherd refuses, with exit status 2, to serve gRPC or the admin endpoints
// without TLS on an address that is not loopback (127.0.0.0/8, ::1 or
// localhost; an empty host or 0.0.0.0 means every interface, which is not
// loopback). Give --tls-cert and --tls-key to serve TLS on both ports, or
// --insecure to accept plaintext, for example behind a load balancer that
// terminates TLS.
//
// # Shutdown
//
// SIGTERM or SIGINT drains the node: /readyz and grpc.health.v1 turn
// NOT_SERVING, every session gets a go_away (GO_AWAY_REASON_DRAIN) spread
// over --drain-window so clients resume elsewhere without a reconnect storm,
// the admin server stops, and tetherd exits 0, all within --drain-grace.
// A second signal during the drain ends the process at once.
//
// # Examples
//
// Serve on the defaults, then look around with grpcurl:
//
//	tetherd
//	grpcurl -plaintext 127.0.0.1:7070 list
//
// Serve TLS on every interface, for mobile clients, logging JSON:
//
//	tetherd --listen :7070 --admin-listen :9090 --tls-cert cert.pem --tls-key key.pem \
//	    --profile mobile --log-format json
//
// Serve one node of a cluster that shares a NATS cluster, its streams
// replicated three times, the password from the environment:
//
//	TETHER_NATS_PASSWORD=... tetherd --broker nats \
//	    --nats-url nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222 \
//	    --nats-user tether --nats-replicas 3
//
// Serve plaintext behind a TLS-terminating load balancer, settings from the
// environment and a file, on a port the kernel picks (the "listening" log
// line says which):
//
//	TETHER_SERVER_ID=edge-1 tetherd --config /etc/tether/tetherd.conf \
//	    --listen 0.0.0.0:0 --insecure
package main
