// Package client is tether's Go SDK: one logical session that lives across
// broken streams, backends and networks.
//
//	s, err := client.New(
//		client.WithAddrs("10.0.0.1:7070", "10.0.0.2:7070"),
//		client.WithClientID("device-7"),
//		client.WithTopics("fleet"),
//	)
//	defer s.Close(ctx)
//	err = s.Send(ctx, client.Message{Topic: "telemetry", Payload: b})
//	m, err := s.Receive(ctx)
//
// # Reconnecting
//
// Every failure takes one path: a go_away from the server, a backend that
// turns NOT_SERVING, a heartbeat timeout (nothing received for the server's
// dead_after), a broken or reset stream, or [Session.Reconnect] called by
// an application that knows its network changed. The session picks a
// healthy backend (grpc.health.v1 Watch on each when there are several;
// random or least-RTT among the healthy), opens a stream, sends Hello
// with the resume token, and the server replays what was not
// acknowledged. Between attempts it waits an exponential backoff with
// full jitter ([backoff.Config]), reset once a stream has worked for
// ResetAfter (5s by default); after a go_away
// it waits what the server asked (retry_after plus a random share of
// retry_jitter) and tries another backend first.
//
// A wait ends early when a backend's health turns SERVING (from
// NOT_SERVING, or from unreachable): the session retries within a random
// share of the backoff's Base, at most half a second, so that a fleet
// that saw the backend come back spreads instead of stampeding. A
// backend's connection is redialled within a second of a failure, so a
// backend that comes back is seen within about a second, and sessions
// are back within about two seconds of it being ready.
//
// The first pick waits up to [WithHealthWait] (500ms) for the health of
// every backend, then picks at random among the healthy ones
// ([WithPick]), so that sessions spread evenly instead of crowding onto
// the backend that answered first.
//
// # Delivery
//
// Sent messages are numbered and kept until the server acks them, and
// re-sent after a resume, where the server drops by seq what it already
// had. With a client id, each also carries an idempotency key, so that a
// re-send into a fresh session (after a failed resume) is dropped too
// (effectively once). The send
// buffer is bounded ([WithSendBuffer]): when it is full, Send blocks,
// fails fast or drops the oldest unwritten message, as chosen.
//
// Every loss is reported to the sender or the receiver. A message Send
// accepted is either handled by the server or reported to the sender: to
// [WithOnSendError]'s callback, as [Session.SendWait]'s error, and in
// tether_client_messages_failed_total. The server answers a message it
// could not handle with an Error frame for its seq (see tether.v1.Error).
// When it could not handle it now (its broker is unreachable, the route
// timed out: UNAVAILABLE and the like), it does not acknowledge it and
// drops what followed it; the session waits a little (25ms doubling up to
// 2s) and sends again from that message on, in order (go-back-N), until
// the server takes it, or the server has taken nothing for [SendRetry]'s
// Within (30s by default): then the message is given up and reported, and
// the next goes. When the server acknowledges the message as failed, a
// NOT_FOUND (its target is connected nowhere right now) of a message Send
// queued is re-sent with its idempotency key after a backoff (SendWait and
// Request return it at once), within the bound of [WithSendRetry]
// (10 sends within 30s by default), as a new message at the end of the
// buffer: such a re-sent message arrives after messages sent after it, so
// an application that needs their order must wait for each (SendWait)
// before sending the next. A final code, or retries used up,
// make a [*SendError]. A message dropped by the DropOldest policy is
// reported with [ErrDropped], and one the server had not acked when the
// session closed with [ErrClosed] (the server may have handled it). On the
// receiving side, messages the server could not keep are reported as a
// lost seq range to [WithOnLoss]'s callback, in
// tether_client_messages_lost_total and in the log: at once when a Gap
// frame says so while connected, and on a resume ([StateChange] Lost).
//
// Received messages are delivered by [Session.Receive] once each, in
// order; duplicates of a replay are dropped by seq. A message is
// acknowledged (cumulatively, in batches) once Receive has returned it.
//
// # Flow control
//
// Server to client, a window: Hello asks the server never to have more
// than [WithReceiveWindow] (1024 messages, 4 MiB of payload by default)
// sent and unacknowledged on a stream, and the server grants a window
// (Welcome.receive_window) within its bounds. The session acks as soon as
// half the granted window was taken by the application and not acked, so
// a reader that keeps up never stalls and never waits for a timer;
// otherwise with the next frame the session sends anyway (a ping, a
// message), and 2s after the first such message at the latest. A slow reader loses nothing
// on its way: what the window holds back waits in the session's outbound
// log on the server. When that log is full, the server's overflow policy
// applies (Welcome.limits.overflow_policy): by default a sender's message
// to this session is refused with RESOURCE_EXHAUSTED and re-sent later;
// under DROP_OLDEST the oldest are dropped and reported to [WithOnLoss]
// at once (a Gap frame).
//
// Client to server, pacing: the writer sends no more frames than
// Welcome.limits.max_frames_per_second allows (bursts of max_frame_burst),
// so Send's buffer fills and its policy applies ([WithSendBuffer]) instead
// of the server having to read more slowly. A message refused because its
// target's log is full (RESOURCE_EXHAUSTED) is re-sent by Send, like any
// refusal, until [SendRetry]'s Within passes without progress; SendWait
// and Request, whose caller waits, return it at once as a [*SendError]
// and withdraw the message. SendWait and Request ask the server to ack
// their message at once (ClientMessage.ack_now), not in a batch.
//
// Batches, both ways: when several messages wait at once, the writer
// sends them in one frame ([WithMaxBatch], 128 by default, as the server
// grants in Welcome.max_batch), and the server does the same; no message
// waits for a batch to fill, and the application sees each message as
// before.
//
// When a resume fails (the session expired, or, with the in-memory broker,
// the stream lands on another node), the server opens a fresh session and
// says why (Welcome.resume_status); the SDK re-subscribes its topics,
// renumbers and re-sends what the old session had not acked, and reports
// the change through [StateChange].
//
// # Liveness
//
// The SDK pings half an interval after a stream's Welcome (ahead of the
// server's first ping, due an interval after it), then whenever it has
// written nothing but pongs for the negotiated heartbeat interval, and
// answers the server's pings. The server's pongs count as its writes, so
// on an idle stream the SDK drives the heartbeat: one ping/pong per interval, and the SDK always
// has a fresh RTT ([Stats], [WithOnRTT]). gRPC keepalive uses the
// profile's ClientParameters, with Time raised to an interval and a half
// of the heartbeat asked for (so it never fires on a heartbeating
// connection) and to twice the floor the server announces in Welcome (so
// it never trips too_many_pings; a connection built before the floor was
// known keeps its Time while the stream's heartbeat keeps it busy, and
// the raised one applies from the next connection, so that learning the
// floor costs no extra stream); TCP keepalive is set on the dialer from
// the same profile.
//
// A peer is dead after Welcome.dead_after of silence or, once a round trip
// was measured and the server offers it (Welcome.liveness.rtt_timeout),
// after interval + max(floor, k × (SRTT + 4·RTTVAR)), never later than
// dead_after (see proto/tether/v1 RttTimeout). Each ping carries the
// SDK's latest round trip, so the server keeps the same estimate.
//
// # Adaptive heartbeat and the background
//
// With [WithAdaptiveHeartbeat] (on in [profile.Mobile]) the SDK learns the
// longest interval the path (a NAT) keeps alive and tells the server
// (SetHeartbeat); what it learned is kept per network ([WithNetwork],
// [Session.SetNetwork]) in an [IntervalStore]. [Session.Suspend] (the app
// goes to the background) asks the server to keep the session, without
// heartbeats, for its suspend window, and holds no connection
// ([StateSuspended]) until [Session.Resume], which reconnects at once and
// replays. See the README's "Mobile apps" section.
//
// # Errors
//
// How the server ends a stream follows the error model of
// tether.v1.TetherService (tether_service.proto), and the SDK reports it
// as an [*Error]: its Code, the server's Message, whether it is Terminal,
// and the [GoAwayError] that preceded it, if any; [CodeOf] takes the code
// of any error. A terminal error (PERMISSION_DENIED, INVALID_ARGUMENT,
// ABORTED, UNAUTHENTICATED before Welcome, a GoAway whose reason says not
// to reconnect, a code tether never sends) ends the session at once: the
// StateClosed change carries it, and every call after it returns an error
// that wraps it and [ErrClosed]. Every other one is retried: backoff,
// reconnect, resume. UNAUTHENTICATED after Welcome (credentials that
// expired) reconnects with fresh credentials (those of the per-RPC
// credentials in [WithDialOptions], or the token); refused again before
// Welcome, it is terminal. A topic the server refuses in
// [Session.Subscribe] or [Session.Unsubscribe] is a [*TopicError]. Every
// error the package returns starts with "tether/client: ".
//
// # Observing
//
// [Session.State], [Session.States] (a latest-value channel),
// [WithOnState] and [WithOnRTT] (callbacks run in order on a goroutine of
// their own, outside every lock), [Session.Stats], slog through
// [WithLogger] (silent by default) and Prometheus through
// [WithRegisterer].
package client
