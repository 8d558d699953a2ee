// Package server is tether's session server: it keeps long-lived gRPC
// sessions alive, notices dead peers fast, and lets a session survive a
// broken stream so that no message is lost or repeated.
//
// A [Server] registers TetherService, AdminService and grpc.health.v1 on a
// *grpc.Server of the caller's:
//
//	srv, err := server.New(server.WithProfile(profile.Default())) // no I/O
//	err = srv.Start(ctx) // starts the broker (with NATS: its streams)
//	gs := grpc.NewServer(srv.GRPCServerOptions()...)
//	srv.Register(gs)
//	go gs.Serve(lis)
//	...
//	srv.Drain(ctx) // on SIGTERM
//
// # Sessions and streams
//
// A session is not a stream. A stream (one TetherService.Connect call) is
// one attempt to carry a session; the session keeps its id, sequence
// numbers, unacknowledged messages and subscriptions for the resume window
// after its stream breaks, and a new stream resumes it with the token from
// its last Welcome. The wire protocol is specified in the comments of
// proto/tether/v1.
//
// # Goroutines and timers
//
// Each stream holds one goroutine, as a raw gRPC stream does: the gRPC
// handler goroutine, which receives Hello (the hello timeout bounds
// receiving it only), opens the session, then reads the stream's frames.
// The server ends a stream from any goroutine by writing its status, as
// gRPC does when a handler returns; that unblocks a Recv, and a Send stuck
// on a client that stopped reading. (While the session opens, the stream
// ends when the open returns, as the open needs the stream's context.) Where gRPC offers no way to write it
// (a grpc.Server's ServeHTTP), the reader has a goroutine of its own and
// the handler goroutine only waits, so that it can always return. Its writer, the
// only caller of Send, runs on a goroutine of its own while frames wait:
// after messages it lingers a second for more, after a pong or an ack it
// exits at once, so an idle stream holds no writer. Heartbeats, dead-peer
// detection, delayed acks and the max-age GoAway share one timer per
// stream, which holds no goroutine while it waits; reads and writes only
// store a timestamp, and the timer re-arms itself from those when it
// fires. A detached session has one timer for its resume window.
//
// # Delivery
//
// Messages are numbered per session and direction. Server messages stay in
// the session's outbound log (see [broker.Log]) until the client acks them.
// A stream has at most the client's receive window sent and unacked (see
// Hello.receive_window); the rest waits in the log. The log is bounded
// ([WithMaxOutboundQueue], [WithMaxOutboundBytes]); a message that finds
// it full meets the [OverflowPolicy] ([WithOverflowPolicy]): its sender is
// told to retry, or the oldest messages are dropped and the client told
// (a Gap frame, or the lost range on resume), or the stream is cut as a
// slow consumer. Control frames (Welcome, Pong, Ack, Gap, GoAway, Error)
// are written before queued messages. Messages that wait together go in
// one batch frame (up to [MaxBatch]) to a client that asked in Hello, and
// a topic message is encoded once for all its subscribers.
//
// # Handlers
//
// The [Handler] sees connects, messages and closes; [Router], the default,
// routes messages by topic, session id, client id and correlation id.
// The calls of one session are serialized, OnClose runs once and last, and
// only after an OnConnect that returned nil; [Handler] says on which
// goroutine each runs. They must not block for long.
//
// With a broker that pipelines ([broker.Pipeliner]: NATS), unless
// [WithPipelining] turns it off, a session's
// messages to a session or client id that Router routes (under Router, or
// a [PassThrough] handler that says it hands them to Router unchanged) go
// out without the reader waiting for each route: each is acknowledged, or
// refused, in order, once its route ended. A handler that does anything
// else with a message sees it one at a time, in order with the others.
//
// # Life cycle
//
// A session is connected (a stream carries it), detached (waiting for a
// resume), closed (ended for good) or moved (to another node, with a
// shared broker); lifecycle.go holds the table of allowed changes, and
// each change is recorded in the session's flight recorder. AdminService
// shows a closed or moved session, with its flight recorder, for the
// resume window after it ended (at most the 1024 most recently ended per
// node).
package server
