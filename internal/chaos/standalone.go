package chaos

import (
	"fmt"
	"io"
	"log/slog"
	"os"
)

// RunStandalone runs case c at size outside a test, as tether-bench chaos
// does: progress lines go to progress, the nodes' and sessions' logs to
// log. It stops everything the case started before it returns, and
// returns an error when the case could not be run (a failed setup), not
// when the fault broke a promise: see [Result.Violations].
func RunStandalone(c Case, size Size, progress io.Writer, log *slog.Logger) (res Result, err error) {
	r := &runner{progress: progress}
	defer func() {
		r.cleanup()
		if p := recover(); p != nil {
			f, ok := p.(fatal)
			if !ok {
				panic(p)
			}
			err = fmt.Errorf("%s: %s", c.Name, string(f))
		}
	}()
	return Run(r, c, size, log), nil
}

// fatal is the panic value of runner.Fatalf.
type fatal string

// runner is a TB outside tests. Only the goroutine that calls Run may call
// Fatalf (the harness does not call it elsewhere).
type runner struct {
	progress io.Writer
	cleanups []func()
	dirs     []string
}

func (r *runner) Helper() {}

func (r *runner) Fatalf(format string, args ...any) { panic(fatal(fmt.Sprintf(format, args...))) }

func (r *runner) Logf(format string, args ...any) {
	fmt.Fprintf(r.progress, "    "+format+"\n", args...)
}

func (r *runner) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *runner) TempDir() string {
	dir, err := os.MkdirTemp("", "tether-chaos-")
	if err != nil {
		r.Fatalf("chaos: %v", err)
	}
	r.dirs = append(r.dirs, dir)
	return dir
}

// cleanup runs the cleanups, last registered first, as testing does, then
// removes the temporary directories.
func (r *runner) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
	for _, d := range r.dirs {
		_ = os.RemoveAll(d)
	}
}
