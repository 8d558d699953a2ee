package cli

// Hidden subcommands of the idle, resume and detection scenarios:
// xserve (a server with lifecycle hooks, on a given address, so that a
// restarted server comes back where its clients look) and xclient (a
// process holding many sessions, commanded on stdin).

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherhq/tether/bench/internal/balancer"
	"github.com/tetherhq/tether/bench/internal/system"
	"github.com/tetherhq/tether/bench/internal/system/centrifugesys"
	"github.com/tetherhq/tether/bench/internal/system/rawsys"
	"github.com/tetherhq/tether/bench/internal/system/tethersys"
)

func init() {
	system.RegisterExt("tether", tethersys.Ext())
	system.RegisterExt("raw", rawsys.Ext())
	system.RegisterExt("centrifuge", centrifugesys.Ext())
}

// hiddenExt are the hidden subcommands of this file (the test binary's
// TestMain runs them too).
var hiddenExt = map[string]bool{"xserve": true, "xclient": true}

// xstate is what an xserve process reports beside its stats.
type xstate struct {
	system.Counters
	// Arrivals are the sessions established, in unix ns.
	Arrivals []int64 `json:"arrivals,omitempty"`
	Resumed  int     `json:"resumed"`
	// Firsts are each session's first arrival, by client id (tether).
	Firsts map[string]xarrival `json:"firsts,omitempty"`
	// Downs are the streams the server noticed were gone.
	Downs []xdown        `json:"downs,omitempty"`
	Tally map[string]int `json:"tally,omitempty"`
	// SendFailures are the burst messages the server could not send, by
	// reason.
	SendFailures map[string]int `json:"send_failures,omitempty"`
}

// xarrival is when a session was established, in unix ns, and whether
// it resumed.
type xarrival struct {
	At      int64 `json:"at"`
	Resumed bool  `json:"resumed"`
}

type xdown struct {
	At  int64  `json:"at"`
	Why string `json:"why"`
}

// xserve runs a system's server with hooks until POST /quit or SIGTERM.
func xserve(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("xserve", flag.ContinueOnError)
	sysName := fs.String("system", "tether", "system under test")
	profName := fs.String("profile", "default", "liveness profile")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	track := fs.Bool("track", false, "record arrivals, downs and tagged messages (resume, detection)")
	var node nodeFlags
	node.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	sys, p, err := lookup(*sysName, *profName)
	if err != nil {
		return err
	}
	app := &system.App{}
	var (
		mu    sync.Mutex
		st    xstate
		tally system.Tally
	)
	var srv system.Server
	opts := node.options(p)
	if *track {
		ext, err := system.LookupExt(*sysName)
		if err != nil {
			return err
		}
		srv, err = ext.NewServer(app, opts, system.Hooks{
			OnSession: func(resumed bool) {
				now := time.Now().UnixNano()
				mu.Lock()
				st.Arrivals = append(st.Arrivals, now)
				if resumed {
					st.Resumed++
				}
				mu.Unlock()
			},
			OnSessionID: func(id string, resumed bool) {
				now := time.Now().UnixNano()
				mu.Lock()
				if _, ok := st.Firsts[id]; !ok {
					if st.Firsts == nil {
						st.Firsts = map[string]xarrival{}
					}
					st.Firsts[id] = xarrival{At: now, Resumed: resumed}
				}
				mu.Unlock()
			},
			OnDown: func(why string) {
				now := time.Now().UnixNano()
				mu.Lock()
				st.Downs = append(st.Downs, xdown{At: now, Why: why})
				mu.Unlock()
			},
			OnMessage: system.Extra(&tally),
		})
		if err != nil {
			return err
		}
	} else if srv, err = sys.NewServer(app, opts); err != nil {
		return err
	}
	lc := p.ListenConfig()
	var lis net.Listener
	for i := 0; ; i++ { // a restarted server may find its port in TIME_WAIT briefly
		if lis, err = lc.Listen(context.Background(), "tcp", *listen); err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	return serveUntilQuit("xserve", srv, lis, func() any {
		mu.Lock()
		defer mu.Unlock()
		s := st
		s.Counters = app.Counters()
		s.Arrivals = append([]int64(nil), st.Arrivals...)
		s.Downs = append([]xdown(nil), st.Downs...)
		s.Firsts = maps.Clone(st.Firsts)
		if *track {
			s.Tally = tally.Snapshot()
			s.SendFailures = tally.Failures()
		}
		return s
	}, stdout)
}

// balancedAddr is the virtual address sessions dial with --backends: the
// balancer picks the real one.
const balancedAddr = "passthrough:///tether-nodes"

// dialer returns bal's Dial, or nil (the system's own dialer) without one.
func dialer(bal *balancer.Balancer) func(context.Context, string) (net.Conn, error) {
	if bal == nil {
		return nil
	}
	return bal.Dial
}

// xreport is what an xclient prints for "report".
type xreport struct {
	Sessions int `json:"sessions"`
	// Bursts: burst messages received (all rounds), distinct ones, and
	// duplicates.
	Received   int   `json:"received"`
	Distinct   int   `json:"distinct"`
	Duplicates int   `json:"duplicates"`
	Redials    int64 `json:"redials"`
	Errors     int64 `json:"errors"`
}

// xsession is one session of an xclient (mode conn).
type xsession struct {
	id  string
	mu  sync.Mutex
	c   system.Client
	up  chan struct{} // closed while c is connected; a raw redial replaces it
	got map[string]int
}

// client waits until the session is connected (a raw session redials after
// its stream fails) and returns its client.
func (s *xsession) client(ctx context.Context) (system.Client, error) {
	s.mu.Lock()
	up := s.up
	s.mu.Unlock()
	select {
	case <-up:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c, nil
}

// xclient opens sessions and holds them; commands on stdin:
//
//	send R K    every session sends K tagged messages "T<id>/<R>/<i>"
//	burst R K   every session asks the server for a burst of K (round R)
//	            (both at once, or spread at --rate sessions per second)
//	backends L  dial new connections to the addresses of L (comma-separated;
//	            with --backends)
//	report      print an xreport line
//	quit (EOF)  close every session and exit
func xclient(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("xclient", flag.ContinueOnError)
	sysName := fs.String("system", "tether", "system under test")
	addr := fs.String("addr", "", "server address")
	profName := fs.String("profile", "default", "liveness profile")
	hb := fs.Duration("heartbeat", 0, "heartbeat interval asked for (0: the profile's)")
	n := fs.Int("sessions", 1, "sessions")
	conns := fs.Int("conns", 0, "mux mode: connections carrying the sessions (0: one connection per session, through the SDK / raw Dial)")
	spread := fs.Duration("spread", 0, "open the sessions evenly over this long")
	offset := fs.Duration("offset", 0, "delay before the first session (interleaves several processes)")
	prefix := fs.String("id", "x", "client id prefix")
	parallel := fs.Int("parallel", 16, "dials in flight at most")
	rate := fs.Float64("rate", 0, "send and burst: sessions per second that start their sends (0: all at once)")
	backends := fs.String("backends", "", "tether only: node addresses, comma-separated; every session dials one virtual address (--addr is not used) through a round-robin balancer over them, in this process, and the command \"backends A,B\" replaces them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sys, p, err := lookup(*sysName, *profName)
	if err != nil {
		return err
	}
	var bal *balancer.Balancer
	if *backends != "" {
		if *sysName != "tether" {
			return fmt.Errorf("--backends: system %s does not dial through a balancer (tether only)", *sysName)
		}
		bal = balancer.New(p.Dialer(), strings.Split(*backends, ",")...)
		*addr = balancedAddr
	}
	opts := system.ClientOptions{Profile: p, Heartbeat: *hb}
	ctx := context.Background()
	var (
		muxes    []system.Mux
		sessions []*xsession
		redials  atomic.Int64
		errs     atomic.Int64
		readers  sync.WaitGroup
		closing  atomic.Bool
	)
	if *conns > 0 {
		ext, err := system.LookupExt(*sysName)
		if err != nil {
			return err
		}
		if ext.DialMux == nil {
			return fmt.Errorf("system %s cannot multiplex sessions", *sysName)
		}
		for range *conns {
			m, err := ext.DialMux(ctx, *addr, opts)
			if err != nil {
				return err
			}
			muxes = append(muxes, m)
		}
	} else {
		sessions = make([]*xsession, *n)
	}
	ext, _ := system.LookupExt(*sysName)
	// read receives until the session is closed; a raw session whose
	// stream fails is dialled anew (full-jitter backoff, base 1s, cap 30s:
	// the SDK's default policy).
	read := func(s *xsession) {
		defer readers.Done()
		attempt := 0
		for {
			s.mu.Lock()
			c := s.c
			s.mu.Unlock()
			b, err := c.Recv(ctx)
			if err == nil {
				if len(b) > 0 && b[0] == system.KindBurstMsg {
					s.mu.Lock()
					s.got[string(b)]++
					s.mu.Unlock()
				}
				continue
			}
			if closing.Load() || ext.Resumes {
				return
			}
			errs.Add(1)
			_ = c.Close()
			down := make(chan struct{})
			s.mu.Lock()
			s.up = down
			s.mu.Unlock()
			for !closing.Load() {
				ceil := min(time.Second<<min(attempt, 5), 30*time.Second)
				attempt++
				time.Sleep(rand.N(ceil))
				dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				nc, err := sys.Dial(dctx, *addr, system.ClientOptions{ID: s.id, Profile: p, Heartbeat: *hb, Dialer: dialer(bal)})
				cancel()
				if err == nil {
					redials.Add(1)
					attempt = 0
					s.mu.Lock()
					s.c = nc
					s.mu.Unlock()
					close(down)
					break
				}
			}
			if closing.Load() {
				return
			}
		}
	}
	time.Sleep(*offset)
	start := time.Now()
	idx := make(chan int)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range *parallel {
		wg.Go(func() {
			for i := range idx {
				if *n > 1 {
					time.Sleep(time.Until(start.Add(*spread * time.Duration(i) / time.Duration(*n))))
				}
				id := fmt.Sprintf("%s-%d", *prefix, i)
				dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				var err error
				if muxes != nil {
					err = muxes[i%len(muxes)].Open(dctx, id)
				} else {
					var c system.Client
					if c, err = sys.Dial(dctx, *addr, system.ClientOptions{ID: id, Profile: p, Heartbeat: *hb, Dialer: dialer(bal)}); err == nil {
						up := make(chan struct{})
						close(up)
						s := &xsession{id: id, c: c, up: up, got: map[string]int{}}
						sessions[i] = s
						readers.Add(1)
						go read(s)
					}
				}
				cancel()
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("session %s: %w", id, err))
				}
			}
		})
	}
	for i := range *n {
		if firstErr.Load() != nil {
			break
		}
		idx <- i
	}
	close(idx)
	wg.Wait()
	closeAllX := func() {
		closing.Store(true)
		var cw sync.WaitGroup
		for _, m := range muxes {
			cw.Go(func() { _ = m.Close() })
		}
		for _, s := range sessions {
			if s != nil {
				cw.Go(func() {
					s.mu.Lock()
					c := s.c
					s.mu.Unlock()
					_ = c.Close()
				})
			}
		}
		cw.Wait()
	}
	if err, _ := firstErr.Load().(error); err != nil {
		closeAllX()
		return err
	}
	fmt.Fprintf(stdout, "{\"ready\":%d,\"open_s\":%.3f}\n", *n, time.Since(start).Seconds())
	var profFile *os.File
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "send", "burst":
			if len(f) != 3 {
				continue
			}
			round, _ := strconv.Atoi(f[1])
			k, _ := strconv.Atoi(f[2])
			var sw sync.WaitGroup
			t0 := time.Now()
			for i, s := range sessions {
				if *rate > 0 {
					time.Sleep(time.Until(t0.Add(time.Duration(float64(i) / *rate * float64(time.Second)))))
				}
				sw.Go(func() {
					// A raw session that is redialing has nothing to
					// send on: wait for it, as an application would.
					wctx, cancel := context.WithTimeout(ctx, time.Minute)
					defer cancel()
					c, err := s.client(wctx)
					if err != nil {
						errs.Add(1)
						return
					}
					if f[0] == "burst" {
						if c.Send(ctx, system.Burst(round, k, 0)) != nil {
							errs.Add(1)
						}
						return
					}
					for i := 1; i <= k; i++ {
						if c.Send(ctx, fmt.Appendf(nil, "T%s/%d/%d", s.id, round, i)) != nil {
							errs.Add(1)
						}
					}
				})
			}
			sw.Wait()
			fmt.Fprintln(stdout, `{"done":true}`)
		case "backends": // backends A,B: where new connections go from now on
			if bal == nil || len(f) != 2 {
				b, _ := json.Marshal(map[string]string{"error": "backends: started without --backends, or no address list"})
				fmt.Fprintf(stdout, "%s\n", b)
				continue
			}
			bal.Set(strings.Split(f[1], ",")...)
			fmt.Fprintln(stdout, `{"done":true}`)
		case "report":
			r := xreport{Sessions: *n, Redials: redials.Load(), Errors: errs.Load()}
			for _, s := range sessions {
				s.mu.Lock()
				for _, v := range s.got {
					r.Received += v
					r.Distinct++
					r.Duplicates += v - 1
				}
				s.mu.Unlock()
			}
			b, _ := json.Marshal(r)
			fmt.Fprintf(stdout, "%s\n", b)
		case "profile": // profile PATH: start a CPU profile of this process
			if len(f) != 2 {
				continue
			}
			pf, err := os.Create(f[1])
			if err == nil {
				if err = pprof.StartCPUProfile(pf); err != nil {
					pf.Close()
				} else {
					profFile = pf
				}
			}
			if err != nil {
				b, _ := json.Marshal(map[string]string{"error": err.Error()})
				fmt.Fprintf(stdout, "%s\n", b)
				continue
			}
			fmt.Fprintln(stdout, `{"done":true}`)
		case "unprofile":
			if profFile != nil {
				pprof.StopCPUProfile()
				_ = profFile.Close()
				profFile = nil
			}
			fmt.Fprintln(stdout, `{"done":true}`)
		case "quit":
			closeAllX()
			return nil
		}
	}
	closeAllX()
	fmt.Fprintln(stderr, "xclient: stdin closed")
	return nil
}
