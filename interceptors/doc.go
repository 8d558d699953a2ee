// Package interceptors assembles tether's gRPC server interceptors from
// go-grpc-middleware v2 and the subpackages here, one per concern:
// [metrics], [logging], [ratelimit] and [recovery] (authentication is
// go-grpc-middleware's auth interceptor around [Config.AuthFunc]).
//
// [ServerOptions] turns a [Config] into grpc.ServerOptions:
//
//	opts, m, err := interceptors.ServerOptions(cfg)
//	...
//	gs := grpc.NewServer(opts...)
//	tetherv1.RegisterTetherServiceServer(gs, ...)
//	m.InitializeMetrics(gs)
//
// # Order
//
// The interceptors run in this order, outermost first, for unary calls and
// streams alike:
//
//  1. metrics: outermost so that it counts every call, including those
//     the inner interceptors reject (Unauthenticated, PermissionDenied,
//     ResourceExhausted) and panics, which it sees as Internal.
//  2. logging: the same view as metrics, so every call that metrics
//     counts has a finish line with the same code. It runs before auth,
//     so it cannot name the principal.
//  3. auth, skipped for [Config.PublicMethods]: before the rate limiter,
//     so that the limiter is keyed by an authenticated principal, and a
//     caller without valid credentials is turned away without spending
//     anyone's budget. Its Unauthenticated and PermissionDenied statuses
//     reach the client as they are.
//  4. rate limit, skipped for [Config.PublicMethods]: one token per
//     unary call or stream open, per principal ([Config.RateKey]), from
//     the bucket of the call's method ([Config.MethodLimits]) or else the
//     shared one ([Config.Rate]). Principals that [Config.RateExempt]
//     names are never limited. Health checks are never throttled.
//
// # Rate limits
//
// The limits guard a node against a client that reconnects or calls in a
// tight loop, not against an honest service's volume: a backend that
// publishes for many users calls Publish thousands of times per second, a
// device opens a stream now and then. So give the methods their own
// rates, and exempt the service principals you run. tetherd's defaults:
//
//	--rate 50 --burst 100                stream opens, AdminService and every other call
//	--publish-rate 10000 --publish-burst 20000    TetherService/Publish, in its own bucket
//	"rate_exempt": true in the token file  never limited
//
// A rejected call ends with ResourceExhausted and an errdetails.RetryInfo
// detail holding the delay until the next token.
//  5. recovery: innermost, so that a panic in the handler becomes an
//     Internal status ("internal error", never the stack) before it
//     passes out through the others. The panic and its stack are logged
//     on the server.
//
// A panic in an interceptor outside recovery, including in
// [Config.AuthFunc] and [Config.RateKey], is not recovered and crashes
// the process, as gRPC does for any unrecovered panic; those functions
// must not panic.
//
// # Limits of the interceptors
//
// Auth runs once, when a stream opens: a credential that expires during a
// session is not checked again here, so the session must enforce expiry.
// The rate limit counts stream opens, not the messages on a stream.
// Recovery covers only the handler's goroutine; every goroutine the server
// starts must recover on its own, for example with
//
//	go func() {
//		defer interceptors.RecoverGoroutine(logger, "session writer")
//		...
//	}()
package interceptors
