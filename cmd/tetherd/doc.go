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
//	/readyz          200 while serving, 503 while draining
//	/metrics         Prometheus: the tether_ series, Go runtime and process
//	/debug/sessions  the node's sessions as JSON (?client_id= filters)
//
// # Configuration
//
// Every setting is a flag. Each flag can also be set by an environment
// variable, TETHER_ plus the flag name in upper case with "-" as "_"
// (TETHER_SERVER_ID for --server-id), or by a config file named by --config:
// one flag per line, the name, a space and the value ("server-id edge-1"),
// with # starting a comment; a file whose first character is "{" is read as
// a JSON object instead ({"server-id": "edge-1"}). A flag on the command
// line wins over the environment, which wins over the file. Run tetherd -h
// for the full list.
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
// Serve plaintext behind a TLS-terminating load balancer, settings from the
// environment and a file, on a port the kernel picks (the "listening" log
// line says which):
//
//	TETHER_SERVER_ID=edge-1 tetherd --config /etc/tether/tetherd.conf \
//	    --listen 0.0.0.0:0 --insecure
package main
