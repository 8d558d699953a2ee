package interceptors

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// RecoverGoroutine recovers a panic in the goroutine that defers it and
// logs it to logger (nil discards) at Error, with where (naming the
// goroutine), the panic value and the stack. Defer it first thing in every
// goroutine a server starts, since the recovery interceptor covers only
// the handler's goroutine:
//
//	go func() {
//		defer interceptors.RecoverGoroutine(logger, "session writer")
//		...
//	}()
//
// It must be deferred directly (defer interceptors.RecoverGoroutine(...)),
// not called from another deferred function, or it recovers nothing. After
// a panic the goroutine returns normally, so whatever waits for it must
// learn of its end some other way, such as an earlier deferred close.
func RecoverGoroutine(logger *slog.Logger, where string) {
	p := recover()
	if p == nil {
		return
	}
	if logger == nil {
		return
	}
	logger.LogAttrs(context.Background(), slog.LevelError, "recovered panic in goroutine",
		slog.String("where", where),
		slog.String("panic", fmt.Sprint(p)),
		slog.String("stack", string(debug.Stack())),
	)
}
