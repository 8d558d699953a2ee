package cli

import (
	"fmt"
	"os"

	"github.com/tetherhq/tether/internal/natstest"
)

// natsRunner is the natstest.TB of one case outside tests: Fatalf panics
// with a natsFatal, which startNATS turns into an error; Close runs the
// cleanups (the server's shutdown) and removes the store directories.
type natsRunner struct {
	cleanups []func()
	dirs     []string
}

type natsFatal string

func (r *natsRunner) Helper() {}

func (r *natsRunner) Fatalf(format string, args ...any) {
	panic(natsFatal(fmt.Sprintf(format, args...)))
}

func (r *natsRunner) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *natsRunner) TempDir() string {
	dir, err := os.MkdirTemp("", "tether-bench-nats-")
	if err != nil {
		r.Fatalf("tether-bench: %v", err)
	}
	r.dirs = append(r.dirs, dir)
	return dir
}

// Close shuts the NATS server down and removes its store.
func (r *natsRunner) Close() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
	for _, d := range r.dirs {
		_ = os.RemoveAll(d)
	}
	r.dirs = nil
}

// startNATS starts embedded NATS servers with JetStream on 127.0.0.1 in
// this (the orchestrator's) process, so that the server processes under
// test carry tether alone: one server, or with servers > 1 a cluster of
// that many (natstest.StartCluster); their client URLs, comma-separated,
// and the func that stops them.
func startNATS(servers int) (urls string, stop func(), err error) {
	r := &natsRunner{}
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(natsFatal)
			if !ok {
				panic(p)
			}
			r.Close()
			err = fmt.Errorf("embedded NATS server: %s", string(f))
		}
	}()
	if servers > 1 {
		return natstest.ClusterURLs(natstest.StartCluster(r, servers)), r.Close, nil
	}
	return natstest.Start(r).URL(), r.Close, nil
}
