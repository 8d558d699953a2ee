package auth

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// WatchSIGHUP reloads store (see [TokenStore.Reload]) each time the
// process receives SIGHUP, until ctx ends. It logs each reload to logger
// (nil discards): the number of principals on success, the error on
// failure, in which case the store keeps its principals.
//
// WatchSIGHUP starts listening before it returns, so a SIGHUP sent after
// the call is never lost to the default action (which ends the process),
// and does its work on one goroutine of its own. The returned channel is
// closed once that goroutine has stopped listening and exited, after ctx
// ends. Signals that arrive during a reload are coalesced into one more
// reload.
//
//	done := auth.WatchSIGHUP(ctx, store, logger)
//	... // serve
//	cancel() // ends ctx
//	<-done
//
// Do not start it with a go statement: the point of returning only once
// it listens is that nothing races the first SIGHUP.
func WatchSIGHUP(ctx context.Context, store *TokenStore, logger *slog.Logger) <-chan struct{} {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				reload(ctx, store, logger)
			}
		}
	}()
	return done
}

// reload reloads store and logs the outcome.
func reload(ctx context.Context, store *TokenStore, logger *slog.Logger) {
	if err := store.Reload(); err != nil {
		logger.ErrorContext(ctx, "tether/auth: token file reload failed; keeping the previous principals",
			slog.String("path", store.Path()), slog.Any("error", err))
		return
	}
	logger.InfoContext(ctx, "tether/auth: token file reloaded",
		slog.String("path", store.Path()), slog.Int("principals", store.Len()))
}
