// Package ratelimit limits how often each principal may open a stream or
// make a unary call, with one token bucket per key.
//
// [Limiter] implements go-grpc-middleware v2's ratelimit.Limiter. Its keys
// come from a function of the call's context, normally the principal name
// that authentication put there, so the limiter must run inside (after) the
// auth interceptor. A rejected call ends with
//
//	ResourceExhausted: too many calls for principal "alice": at most 1/s, retry after 1s
//
// with an errdetails.RetryInfo detail holding the exact delay.
//
// # What is limited
//
// A stream counts once, when it opens; the messages on it are not limited
// here (limit those in the handler). This guards against reconnect storms,
// which clients should also spread with jittered backoff.
//
// # Memory
//
// The limiter holds at most [WithMaxKeys] buckets. A key unused for
// [WithIdleTimeout] is dropped; by default that is never before its bucket
// has refilled, so dropping it loses nothing. If the limiter is full, the
// least recently used key is dropped, and it starts with a full bucket when
// it comes back. Eviction happens during calls: the limiter starts no
// goroutine and needs no Close.
//
// # Interceptors
//
// Use [UnaryServerInterceptor] and [StreamServerInterceptor] rather than
// go-grpc-middleware's: theirs rewrap the limiter's error in a longer
// message and drop the RetryInfo detail; these return a status error from
// the limiter as it is.
package ratelimit
