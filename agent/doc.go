// Package agent lends one long-lived tether session to short-lived local
// processes (PHP-FPM workers, cron jobs, shell scripts): the classic local
// proxy over a long connection, with the SDK's guarantees (failover,
// resume, buffering, idempotency keys). `tether agent` is this package on
// the command line.
//
//	a, err := agent.New([]client.Option{client.WithAddrs("10.0.0.1:7070", "10.0.0.2:7070"), client.WithClientID("web-1")})
//	l, err := agent.ListenUnix("/run/user/1000/tether-agent.sock") // mode 0600
//	go a.Serve(l)
//	defer a.Shutdown(ctx)
//
// # API
//
// JSON over HTTP/1.1, on a Unix socket ([ListenUnix]: owner only) or a
// loopback port ([ListenLoopback]). A POST's body must be sent with
// Content-Type: application/json (optionally "; charset=utf-8"; curl
// --json does it); anything else gets 415. No browser may use the agent: a
// request with an Origin header or Sec-Fetch-Site: cross-site or same-site
// is refused with 403, and so, on a TCP port, is one whose Host is not a
// loopback address or localhost (DNS rebinding):
//
//	POST /v1/publish  {"topic"|"session_id"|"client_id": "…", "payload": "text" | "payload_b64": "…",
//	                   "content_type", "headers", "idempotency_key", "wait": true}
//	                  → 202 {"acked":false} once queued in the session, or with "wait"
//	                    200 {"acked":true} once the server has it. With "correlation_id" and
//	                    no target it is a reply to a request seen on the event stream.
//	POST /v1/request  {"topic"|"session_id"|"client_id", "payload"|"payload_b64", "content_type",
//	                   "headers", "timeout": "5s"}
//	                  → 200 the reply {"payload", "content_type", "headers", "source_client", …}
//	GET  /v1/events   Server-Sent Events: "message" and "state" events, each with an id
//	GET  /v1/status   {"state", "backend", "session_id", "rtt_ms", "reconnects", "resume_status", …}
//
// Every error is a 4xx or 5xx with {"error": "what was wrong", "retryable": bool}:
// 400 bad JSON or fields (or the server found the message invalid), 403
// the server denied the agent's principal the target, 404 unknown path or
// no session for the target session or client id, 405 wrong method, 408
// body too slow, 413 body too large (or above the server's
// max_message_bytes), 429 the caller's limit, 502 the responder failed (a
// reply carrying the [ReplyErrorHeader] header; the body holds the reply
// too) or the server refused the message for another reason, 503 the
// agent's limit, the server's backpressure or unavailability, or a call
// lost in a failover (retryable), or the session ended (not retryable),
// 504 no reply in time (retryable).
//
// # Requests during a failover
//
// Each request gets a fresh correlation id and an idempotency key that
// every re-send keeps. When the session resumes (same node, or any node
// with a shared broker), the reply still arrives and the call completes.
// When the server opens a fresh session instead (with the in-memory
// broker, a failover to another node), a request the old session had
// acknowledged can get no reply: its call fails at once with 503 and
// "retryable": true. A request not yet acknowledged is re-sent by the SDK
// in the new session and completes. A reply is handed to its caller once;
// a second reply, or one after its call ended, is dropped (counted in
// /v1/status as late_replies). So a call either completes or fails with a
// clear retryable error, never twice; a retried request may reach the
// responder again, as with any at-least-once request.
//
// # Events
//
// Messages the session receives (other than replies to calls) and its
// state changes are kept in a buffer bounded in count ([WithBuffer]) and
// bytes ([WithBufferBytes]). Their ids increase by one from a base taken
// when the agent starts, its start time in microseconds since 1970, so the
// ids of an agent that restarted are above those of the one before. A
// reader gets every buffered event after its Last-Event-ID (header, or
// ?last_event_id=N), every buffered one without it, then new ones as they
// come. When events it asked for are gone, it first gets a "missed" event
// without an id: {"reason":"buffer_overflow","first":F,"last":L}, or
// {"reason":"unknown_id","last_event_id":N} when the id is not one this
// agent issued (it restarted, and what the earlier one buffered is gone).
// A reader without an id gets no "missed" event. The agent acknowledges
// messages to the server as it buffers them: the buffer is what a reader
// can get back.
//
// A reply to a call is a message with the call's correlation id, addressed
// to the agent's session (no topic), from another session. A request the
// agent sent to a topic it is subscribed to comes back to it as an event.
//
// # Limits
//
// Request bodies are bounded ([WithMaxBody]) and must arrive in time
// ([WithReadTimeouts]); calls in flight are bounded on the agent and per
// caller ([WithLimits]: a caller is a process, by the Unix socket's peer
// credentials on Linux), event streams in all ([WithMaxStreams]) and per
// caller ([WithCallerStreams]); a request waits for its reply for its
// "timeout", at most [WithRequestTimeout]'s maximum. On the loopback port
// each TCP connection is a caller of its own, so there only the limits on
// the whole agent bind. On Linux, a connection from another user (root,
// who passes file permissions), or one whose peer credentials cannot be
// read, is refused with 403.
package agent
