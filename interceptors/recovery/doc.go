// Package recovery turns a panic in a gRPC handler into an Internal status
// and logs it, with its stack, on the server.
//
// It wraps the recovery interceptors of go-grpc-middleware v2 with a
// handler ([Handler]) that replaces their default. The default returns a
// *PanicError that is not a status, so the client would get Unknown with the
// panic value and the full stack in the message. Here the client gets
// exactly
//
//	status.Error(codes.Internal, "internal error")
//
// and the panic value and stack go to the [*slog.Logger] given with
// [WithLogger], at [slog.LevelError].
//
// # Scope
//
// Only a panic in the handler's goroutine is recovered, and only in the
// interceptors and handler that run inside this one: put it innermost in
// the chain so that metrics and logging, further out, see the panic as
// Internal. A goroutine the handler starts must recover on its own (see
// interceptors.RecoverGoroutine).
package recovery
