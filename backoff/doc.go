// Package backoff holds the parameters of the client's reconnect backoff.
//
// A [Config] is a plain struct of four values; start from [DefaultConfig],
// change the fields you need, and hand it to the client (client.WithBackoff),
// which calls [Config.Validate] when it is constructed. The mechanics that
// turn a Config into delays live in an internal package, so this one stays a
// stable, dependency-free description of the policy.
//
// # Full jitter
//
// After the n-th failed attempt in a row (counting from zero) the client
// waits a delay drawn uniformly from
//
//	[0, min(Cap, Base × Multiplier^n))
//
// This is "full jitter": the whole interval is random, not just a fraction
// of it. When a backend dies and thousands of clients lose their streams at
// the same instant, full jitter spreads their retries evenly over the window
// instead of letting them arrive in lockstep and knock over the next backend.
// Each client draws from its own randomly seeded source.
//
// The delay applies to failures. A session that stayed connected for at least
// ResetAfter resets the attempt counter, so a long-lived session that breaks
// retries quickly again; one that drops sooner counts as another failed
// attempt, so a flapping backend does not reset the backoff.
package backoff
