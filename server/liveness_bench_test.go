package server

import (
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// The heartbeat benchmarks measure the liveness path of idle sessions:
// memory per idle session, one heartbeat tick, and the CPU that timers
// firing at the rate of 100,000 sessions with a 30 s interval cost, beside
// a raw app-level ping/pong (one timer per stream that queues a Ping) and,
// for the firing, a batched sweep prototype. Under -short they use 10,000
// sessions instead of 100,000 (the figures are per session or per tick).
//
//	go test -run '^$' -bench 'Heartbeat' -benchmem ./server/

const benchInterval = 30 * time.Second

// benchSessions is how many idle sessions the heartbeat benchmarks hold.
func benchSessions() int {
	if testing.Short() {
		return 10_000
	}
	return 100_000
}

// rawPinger is the raw twin: an app-level ping/pong on a bidi stream, one
// timer per stream that queues a Ping for the stream's writer and checks
// the last pong.
type rawPinger struct {
	mu       sync.Mutex
	ctrl     []*tetherv1.Ping
	wake     chan struct{}
	timer    *time.Timer
	pings    uint64
	lastPong atomic.Int64
	dead     bool
}

func newRawPinger() *rawPinger {
	p := &rawPinger{wake: make(chan struct{}, 1)}
	p.lastPong.Store(time.Now().UnixNano())
	p.timer = time.AfterFunc(benchInterval, p.tick)
	return p
}

func (p *rawPinger) tick() {
	now := time.Now()
	p.mu.Lock()
	if now.Sub(time.Unix(0, p.lastPong.Load())) > 3*benchInterval {
		p.dead = true
		p.mu.Unlock()
		return
	}
	p.pings++
	p.ctrl = append(p.ctrl, &tetherv1.Ping{Id: p.pings, SentAt: timestamppb.New(now)})
	p.timer.Reset(benchInterval)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *rawPinger) pop() {
	p.mu.Lock()
	clear(p.ctrl)
	p.ctrl = p.ctrl[:0]
	p.mu.Unlock()
}

// heapInUse returns the heap and stack in use after a GC. It first lets
// the scheduler run, which removes stopped timers from the runtime's timer
// heap: until then they keep what their functions reference reachable.
func heapInUse() uint64 {
	time.Sleep(10 * time.Millisecond)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// liveHub opens n sessions whose streams have their heartbeat timers
// armed, as Server.open leaves them.
func liveHub(b *testing.B, n int) *benchHub {
	h := newBenchHub(b, 0)
	h.srv.cfg.maxSessions = n
	hb := h.srv.cfg.profile.Heartbeat
	for i := range n {
		s := h.open(b, "c"+strconv.Itoa(i))
		s.st.startLiveness(benchInterval, hb.Misses, hb.Grace, time.Time{})
		h.sessions = append(h.sessions, s)
	}
	return h
}

// pendingTimers arms n timers that do not fire during the benchmark, so
// that the runtime's timer heap holds as many as n idle sessions' would.
func pendingTimers(b *testing.B, n int) {
	ts := make([]*time.Timer, n)
	for i := range ts {
		ts[i] = time.AfterFunc(benchInterval+time.Duration(i)*time.Microsecond, func() {})
	}
	b.Cleanup(func() {
		for _, t := range ts {
			t.Stop()
		}
	})
}

// BenchmarkHeartbeatIdle measures the memory of idle sessions (heap and
// stacks after GC, per session): a tether session with its stream and
// armed timer, no topic, on the memory broker; and the raw twin's
// per-stream ping state. Neither counts gRPC's own stream, nor the
// goroutines a real stream runs. ns/op is the time to open them all.
func BenchmarkHeartbeatIdle(b *testing.B) {
	n := benchSessions()
	b.Run("tether", func(b *testing.B) {
		for b.Loop() {
			before := heapInUse()
			h := liveHub(b, n)
			after := heapInUse()
			b.ReportMetric(float64(after-before)/float64(n), "B/session")
			h.close()
		}
	})
	b.Run("raw", func(b *testing.B) {
		first := true
		for b.Loop() {
			before := heapInUse()
			ps := make([]*rawPinger, n)
			for i := range ps {
				ps[i] = newRawPinger()
			}
			after := heapInUse()
			if first {
				// Later rounds may see the previous round's pingers freed
				// while they build: only the first is reported.
				b.ReportMetric(float64(after-before)/float64(n), "B/session")
				first = false
			}
			for _, p := range ps {
				p.timer.Stop()
			}
		}
	})
}

// BenchmarkHeartbeatTick measures one heartbeat on a write-idle stream,
// called directly (no timer firing): check the deadlines, queue a Ping,
// re-arm the timer, wake the writer, and the writer popping the Ping. The
// sessions rotate over benchSessions() idle ones, for a realistic cache.
func BenchmarkHeartbeatTick(b *testing.B) {
	n := benchSessions()
	b.Run("tether", func(b *testing.B) {
		h := liveHub(b, n)
		old := time.Now().Add(-benchInterval).UnixNano()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			st := h.sessions[i%n].st
			i++
			st.lastWrite.Store(old)
			st.tick()
			if f := nextFrame(st); f.GetPing() == nil {
				b.Fatalf("frame %v, want a ping", f)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		ps := make([]*rawPinger, n)
		for i := range ps {
			ps[i] = newRawPinger()
		}
		defer func() {
			for _, p := range ps {
				p.timer.Stop()
			}
		}()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p := ps[i%n]
			i++
			p.tick()
			p.pop()
		}
	})
}

// fireRate is 100,000 sessions' heartbeats at a 30 s interval.
const fireRate = 100_000 / 30

// BenchmarkHeartbeatFire measures the process CPU (user+system, from
// getrusage) per heartbeat when the timers really fire, spread evenly at
// fireRate ticks per second while benchSessions() other timers are pending:
// tether's one timer per stream, the raw twin's one timer per stream, and
// a sweep prototype that runs the due ticks of many streams from one
// ticker (10 ms and 100 ms granularity). One op is one tick; each op takes
// 1/fireRate of wall time. cpu-ns/tick is the figure to compare.
func BenchmarkHeartbeatFire(b *testing.B) {
	n := benchSessions()
	gap := time.Second / fireRate
	pendingTimers(b, n)
	b.Run("tether", func(b *testing.B) {
		k := min(b.N, n)
		h := liveHub(b, k)
		old := time.Now().Add(-benchInterval).UnixNano()
		start := time.Now().Add(10 * time.Millisecond)
		for i := range k {
			st := h.sessions[i].st
			st.lastWrite.Store(old)
			st.lastRead.Store(time.Now().UnixNano())
			at := start.Add(time.Duration(i) * gap)
			st.mu.Lock()
			st.due = at
			st.timer.Reset(time.Until(at))
			st.mu.Unlock()
		}
		measureFire(b, k, start.Add(time.Duration(k)*gap), func(i int) bool { return h.sessions[i].st.ctrlBacklog() > 0 })
	})
	b.Run("raw", func(b *testing.B) {
		k := min(b.N, n)
		ps := make([]*rawPinger, k)
		for i := range ps {
			ps[i] = newRawPinger()
		}
		defer func() {
			for _, p := range ps {
				p.timer.Stop()
			}
		}()
		start := time.Now().Add(10 * time.Millisecond)
		for i := range k {
			ps[i].timer.Reset(time.Until(start.Add(time.Duration(i) * gap)))
		}
		measureFire(b, k, start.Add(time.Duration(k)*gap), func(i int) bool { return len(ps[i].wake) == 1 })
	})
	for _, g := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond} {
		b.Run("sweep-"+g.String(), func(b *testing.B) {
			k := min(b.N, n)
			h := liveHub(b, k)
			old := time.Now().Add(-benchInterval).UnixNano()
			start := time.Now().Add(10 * time.Millisecond)
			due := make([]time.Time, k)
			for i := range k {
				st := h.sessions[i].st
				st.lastWrite.Store(old)
				st.lastRead.Store(time.Now().UnixNano())
				st.mu.Lock()
				st.timer.Stop() // the sweep owns the deadlines
				st.mu.Unlock()
				due[i] = start.Add(time.Duration(i) * gap)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				t := time.NewTicker(g)
				defer t.Stop()
				next := 0
				for {
					select {
					case <-stop:
						return
					case now := <-t.C:
						for ; next < k && !due[next].After(now); next++ {
							h.sessions[next].st.tick()
						}
					}
				}
			})
			measureFire(b, k, start.Add(time.Duration(k)*gap+g), func(i int) bool { return h.sessions[i].st.ctrlBacklog() > 0 })
			close(stop)
			wg.Wait()
		})
	}
}

// measureFire waits until the k ticks due by end have all run (fired(i)
// reports tick i) and reports the process CPU per tick.
func measureFire(b *testing.B, k int, end time.Time, fired func(i int) bool) {
	b.Helper()
	runtime.GC() // not the setup's garbage
	b.ResetTimer()
	cpu0 := cpuTime()
	time.Sleep(time.Until(end))
	for i := 0; i < k; {
		if fired(i) {
			i++
			continue
		}
		time.Sleep(time.Millisecond)
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(k), "cpu-ns/tick")
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
