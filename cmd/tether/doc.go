// Tether is the command-line client of tether servers (tetherd): it holds
// a session and prints its events, publishes messages, lends one session
// to short-lived local processes, answers requests with a shell command,
// and lists, shows and closes sessions.
//
//	tether connect   hold a session (the Go SDK, [github.com/tetherhq/tether/client])
//	                 and print every event on stdout as one JSON object per line:
//	                 state changes, messages, RTTs, errors; Ctrl-C closes it
//	tether publish   TetherService.Publish one message to a topic, a session or a
//	                 client id; prints {"delivered":N,"duplicate":false}
//	tether sessions  AdminService: list, get SESSION_ID (with the flight
//	                 recorder), close SESSION_ID
//	tether agent     hold one session and lend it to local processes: HTTP/JSON
//	                 on a Unix socket (mode 0600) and optionally a loopback port:
//	                 POST /v1/publish, POST /v1/request, GET /v1/events (Server-Sent
//	                 Events, Last-Event-ID), GET /v1/status
//	                 ([github.com/tetherhq/tether/agent] documents the API)
//	tether version   the version, commit and Go version, as a JSON line
//	tether reply     answer the requests sent to a topic: run --command with the
//	                 payload on stdin and reply with its stdout (an error reply when
//	                 it fails), or echo; at most --concurrency at once
//
// Run tether COMMAND --help for the flags and examples of each.
//
// # Flags and environment
//
// --addr names the server, host:port, repeated (or comma-separated) for
// several: connect picks among the healthy ones and moves when one fails;
// publish and sessions talk to exactly one. Without --addr, tether reads
// TETHER_ADDR, else uses 127.0.0.1:7070, tetherd's default. --token sends
// "authorization: Bearer TOKEN" on every call; without it, tether reads
// TETHER_TOKEN, which keeps the token out of ps, or --token-file
// (TETHER_TOKEN_FILE). --timeout (default 10s) bounds each unary call and
// connect's graceful close. Connections are plaintext unless a TLS flag is
// given: --tls (the system's CA certificates), --tls-ca FILE (a private
// CA), --tls-cert and --tls-key (a client certificate, mTLS),
// --tls-server-name (the name to expect in the server's certificate). A
// token is never sent in plaintext beyond loopback; --insecure allows it
// where the network encrypts. tether version (and --version) prints the
// version, commit and Go version.
//
// # Output of connect
//
// One JSON object per line, flushed as it happens, never interleaved:
//
//	{"event":"state","state":"connecting","time":"2026-01-02T15:04:05.123456789Z"}
//	{"event":"state","state":"connected","backend":"127.0.0.1:7070","session_id":"…","resumed":false,"resume_status":"RESUME_STATUS_NOT_REQUESTED","time":"…"}
//	{"event":"message","seq":1,"topic":"news","payload":"hi","source_client":"sender","published_at":"…","time":"…"}
//	{"event":"message","seq":2,"payload_b64":"AAEC/w==","source_client":"sender","time":"…"}
//	{"event":"rtt","ms":0.412,"backend":"127.0.0.1:7070","time":"…"}
//	{"event":"lost","cause":"gap","first":4,"last":6,"session_id":"…","reason":"…","time":"…"}
//	{"event":"state","state":"reconnecting","session_id":"…","error":"…","time":"…"}
//	{"event":"state","state":"closed","session_id":"…","time":"…"}
//	{"event":"error","error":"…","time":"…"}
//
// A payload that is valid UTF-8 is shown as text ("payload"), any other as
// standard base64 ("payload_b64"). Empty fields are left out. A resume that
// lost messages carries "lost":{"first":N,"last":M} on its connected line,
// and a fresh session that took its client id over from an earlier one
// "took_over":{"session_id":…,"inherited":N,"dropped":{"first":N,"last":M}}.
// A "lost" line names server messages that will never arrive, as soon as
// the session learns it (client.Loss): cause "gap", "resume" or
// "take_over".
//
// # Exit status
//
// 0 on success (for connect: closed by Ctrl-C or SIGTERM), 1 when the
// command failed (a call failed, a publish to a session or client id
// reached no session, or the server ended connect's session for good), 2
// for bad flags or arguments. Errors are reported on stderr, and
// by connect also as an "error" line.
//
// # Examples
//
//	tetherd --listen 127.0.0.1:7070 &
//	tether connect --client-id dev1 --topic news &
//	tether publish --client-id dev1 --data hi
//	echo '{"v":1}' | tether publish --topic news --content-type application/json
//	tether sessions list --client-id dev1
//	tether sessions close SESSION_ID --reason "device retired"
//	tether reply svc.echo --command 'tr a-z A-Z' &
//	tether agent --client-id web-1 --socket /tmp/tether.sock &
//	curl --unix-socket /tmp/tether.sock --json '{"topic":"svc.echo","payload":"hi"}' http://agent/v1/request
//	curl -N --unix-socket /tmp/tether.sock http://agent/v1/events
package main
