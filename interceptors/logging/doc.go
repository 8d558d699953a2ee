// Package logging logs the start and the finish of each gRPC call to a
// [*slog.Logger], through the logging interceptors of go-grpc-middleware v2.
//
// [Adapter] is the slog adapter those interceptors need (upstream ships it
// only as an example snippet). [UnaryServerInterceptor] and
// [StreamServerInterceptor] configure them the way tether wants:
//
//   - Only the start and the finish of a call are logged, never payloads
//     (go-grpc-middleware's PayloadReceived and PayloadSent events): on a
//     session stream those would log every heartbeat. No option turns
//     them on.
//   - The finish line carries the call's code (grpc.code), its error
//     (grpc.error) and its duration as grpc.duration, e.g. "2h13m5.2s".
//   - For a session method (by default tether.v1.TetherService/Connect,
//     see [WithSessionMethods]) the finish is logged at Info whatever the
//     code, since drained, taken-over, timed-out and cut-off are normal
//     ends of a long-lived stream; only the codes that mean a bug
//     (Unknown, Internal, DataLoss, Unimplemented) stay at Error. See
//     [SessionCodeToLevel]. Other calls (Publish, AdminService, health)
//     log a success at Debug, start and finish, and a failure at
//     go-grpc-middleware's server default level: see [CallCodeToLevel].
//     A call's start line has the level of its success.
//
// # Long-lived streams
//
// A stream's start line is written when it first receives or sends a
// message, and its finish line when it ends, which for a session can be
// days later. Log what happens in between (resume, migrate, go-away)
// from the session itself.
package logging
