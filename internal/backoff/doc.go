// Package backoff implements the client's reconnect backoff: the mechanics
// behind the public parameters in
// [github.com/tetherhq/tether/backoff.Config].
//
// A [Backoff] turns a Config into a sequence of full-jitter delays, one per
// failed attempt, and [Wait] sleeps for one of them unless the context ends
// first. A reconnect loop looks like this:
//
//	b, err := backoff.New(cfg, nil) // nil: a source seeded from crypto/rand
//	...
//	for {
//		up, established := runSession(ctx) // returns when the session ends
//		if established {
//			b.ResetIfStable(up) // a long enough session starts over at Base
//		}
//		if err := backoff.Wait(ctx, b.Next()); err != nil {
//			return err // ctx ended while waiting
//		}
//	}
//
// Only an established session may reset the counter: with a ResetAfter of
// zero, any call to [Backoff.ResetIfStable] resets it.
//
// Retries that must go out at once (after a drain or a clean server close,
// which name their own retry delay) bypass the Backoff entirely.
//
// # Randomness
//
// Each Backoff draws from its own *rand.Rand. By default that source is a
// PCG seeded from crypto/rand, so two clients started at the same instant
// still draw different delays; tests inject a deterministically seeded
// source instead. A shared fixed seed would put every client in lockstep and
// defeat the jitter.
//
// # Time
//
// Wait uses the standard time package, so tests run it under testing/synctest
// and fake time covers minutes of backoff in microseconds.
package backoff
