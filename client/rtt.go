package client

import (
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/liveness"
)

// pulse is a stream's heartbeat numbers as they change while it lives: the
// interval (an adaptive heartbeat moves it), the dead-after (the
// RTT-derived timeout moves it with each round trip, see
// tetherv1.RttTimeout), what the server offers (Welcome.liveness) and the
// outstanding ping that follows a full interval of silence, which tests
// the interval for the adaptive heartbeat.
type pulse struct {
	mu        sync.Mutex
	interval  time.Duration
	deadAfter time.Duration
	misses    int
	grace     time.Duration
	timeout   liveness.Timeout
	est       liveness.RTT
	last      time.Duration // the latest sample, sent in Ping.rtt
	offer     *tetherv1.Liveness

	probing   bool          // a ping is outstanding
	probeIdle time.Duration // the silence on the path before it
}

// init takes the Welcome's numbers.
func (p *pulse) init(w *tetherv1.Welcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.interval = w.GetHeartbeatInterval().AsDuration()
	p.misses = int(max(w.GetHeartbeatMisses(), 1))
	p.grace = max(w.GetDeadAfter().AsDuration()-p.interval*time.Duration(p.misses), 0)
	p.offer = w.GetLiveness()
	if t := p.offer.GetRttTimeout(); t != nil {
		p.timeout = liveness.Timeout{Floor: t.GetFloor().AsDuration(), Multiplier: int(t.GetMultiplier())}
	}
	p.deadAfter = p.deadAfterLocked()
}

func (p *pulse) deadAfterLocked() time.Duration {
	return p.timeout.DeadAfter(p.interval, liveness.Fixed(p.interval, p.misses, p.grace), &p.est)
}

// get returns the interval and the dead-after in force.
func (p *pulse) get() (interval, deadAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.interval, p.deadAfter
}

// setInterval moves the interval (after a SetHeartbeat).
func (p *pulse) setInterval(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.interval = d
	p.deadAfter = p.deadAfterLocked()
}

// offers returns what the server offers (Welcome.liveness; nil: nothing).
func (p *pulse) offers() *tetherv1.Liveness {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.offer
}

// pinged notes a ping sent after idle of silence on the path and returns
// the RTT sample it carries (Ping.rtt; nil before the first).
func (p *pulse) pinged(idle time.Duration) *durationpb.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.probing {
		p.probing, p.probeIdle = true, idle
	}
	if p.est.Samples() == 0 {
		return nil
	}
	return durationpb.New(p.last)
}

// ponged takes in a round trip and returns the silence before the ping it
// answers.
func (p *pulse) ponged(rtt time.Duration) (idle time.Duration, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.est.Add(rtt)
	p.last = rtt
	p.deadAfter = p.deadAfterLocked()
	idle, ok = p.probeIdle, p.probing
	p.probing = false
	return idle, ok
}

// unanswered returns the silence before the ping outstanding, if any.
func (p *pulse) unanswered() (idle time.Duration, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.probeIdle, p.probing
}

// lastActive is when the stream last carried a frame either way (a pong
// this side wrote aside).
func (c *conn) lastActive() time.Time {
	return time.Unix(0, max(c.lastRead.Load(), c.lastWrite.Load()))
}
