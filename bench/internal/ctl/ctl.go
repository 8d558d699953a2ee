// Package ctl is the server process's loopback control endpoint: the
// driver reads the server's own CPU time, memory and goroutines from it
// before and after each phase, and its /debug/pprof for profiles.
package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Stats is one reading of the server process.
type Stats struct {
	// CPU is user+system CPU time of the whole process (getrusage).
	CPU time.Duration `json:"cpu_ns"`
	// HeapStack is HeapInuse+StackInuse and RSS is VmRSS, in bytes; after
	// runtime.GC and debug.FreeOSMemory when GC is true.
	HeapStack  uint64 `json:"heap_stack_bytes"`
	Stack      uint64 `json:"stack_bytes"` // StackInuse alone: goroutine stacks
	RSS        uint64 `json:"rss_bytes"`
	GC         bool   `json:"gc"`
	Goroutines int    `json:"goroutines"`
	// App is the benchmark application's counters (system.Counters).
	App json.RawMessage `json:"app,omitempty"`
}

// Read reads the calling process's stats; with gc it collects garbage and
// returns memory to the OS first.
func Read(gc bool) Stats {
	if gc {
		runtime.GC()
		debug.FreeOSMemory()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Stats{
		CPU:        cpuTime(),
		HeapStack:  ms.HeapInuse + ms.StackInuse,
		Stack:      ms.StackInuse,
		RSS:        rss(),
		GC:         gc,
		Goroutines: runtime.NumGoroutine(),
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss returns VmRSS from /proc/self/status, 0 where there is none.
func rss() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Serve serves the control endpoint on lis: GET /stats[?gc=1], and
// /debug/pprof/. app returns the application's counters as JSON. quit is
// closed by POST /quit.
func Serve(lis net.Listener, app func() any, quit chan<- struct{}) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		st := Read(r.URL.Query().Get("gc") == "1")
		st.App, _ = json.Marshal(app())
		_ = json.NewEncoder(w).Encode(st)
	})
	var once sync.Once
	mux.HandleFunc("POST /quit", func(http.ResponseWriter, *http.Request) {
		once.Do(func() { close(quit) })
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(lis) }()
	return hs
}

// Client reads a server's control endpoint.
type Client struct {
	Addr string
	hc   http.Client
}

// NewClient returns a client of the endpoint at addr.
func NewClient(addr string) *Client {
	return &Client{Addr: addr, hc: http.Client{Timeout: 2 * time.Minute}}
}

// Stats reads the server's stats (after a GC when gc is true) into st and
// the app counters into app (may be nil).
func (c *Client) Stats(ctx context.Context, gc bool, app any) (Stats, error) {
	url := "http://" + c.Addr + "/stats"
	if gc {
		url += "?gc=1"
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return Stats{}, fmt.Errorf("control endpoint: %w", err)
	}
	defer resp.Body.Close()
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return Stats{}, fmt.Errorf("control endpoint: %w", err)
	}
	if app != nil && len(st.App) > 0 {
		if err := json.Unmarshal(st.App, app); err != nil {
			return Stats{}, err
		}
	}
	return st, nil
}

// Profile writes a CPU profile of the server over d to path.
func (c *Client) Profile(ctx context.Context, d time.Duration, path string) error {
	return c.save(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", c.Addr, max(1, int(d.Seconds()))), path)
}

// HeapProfile writes a heap profile of the server, taken after a GC, to
// path.
func (c *Client) HeapProfile(ctx context.Context, path string) error {
	return c.save(ctx, "http://"+c.Addr+"/debug/pprof/heap?gc=1", path)
}

// save writes the body of a GET of url to path.
func (c *Client) save(ctx context.Context, url, path string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.ReadFrom(resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ProfileAsync starts Profile in the background, or nothing when path is
// empty; the channel yields its error (nil if none) once it is done.
func (c *Client) ProfileAsync(ctx context.Context, d time.Duration, path string) <-chan error {
	done := make(chan error, 1)
	if path == "" {
		done <- nil
		return done
	}
	go func() { done <- c.Profile(ctx, d, path) }()
	return done
}

// Quit asks the server process to exit.
func (c *Client) Quit(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.Addr+"/quit", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
