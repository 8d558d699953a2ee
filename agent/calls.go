package agent

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"

	"github.com/tetherhq/tether/client"
)

// errRetryable marks a failure after which the same call may succeed.
var errRetryable = errors.New("retryable")

// recentCalls is how many ended calls' correlation ids are remembered, so
// a reply that comes after its call ended is dropped, not shown as an
// event.
const recentCalls = 4096

// call is one request waiting for its reply.
type call struct {
	reply  chan *client.Message // capacity 1: the first reply wins
	failed chan error           // capacity 1
	acked  bool                 // the server acked the request in session `epoch`
	epoch  int
}

// calls tracks the requests in flight by correlation id. It is safe for
// concurrent use.
type calls struct {
	mu      sync.Mutex
	pending map[string]*call
	epoch   int                 // fresh sessions seen: acked calls of older ones are lost
	recent  map[string]struct{} // ended calls, for late replies
	order   []string            // recent, oldest first (a ring)
	next    int
	lateN   int // late replies dropped
	done    int // replies handed to callers
}

func newCalls() *calls {
	return &calls{pending: make(map[string]*call), recent: make(map[string]struct{}), order: make([]string, recentCalls)}
}

// do sends m as a request and waits for its reply, ctx's end, or a failure
// that makes the reply impossible. send is the session's SendWait.
func (cs *calls) do(ctx context.Context, m client.Message, send func(context.Context, client.Message) error) (*client.Message, error) {
	m.CorrelationID = newID()
	// The same key on every re-send: the server drops a repeat it had.
	m.IdempotencyKey = "agent-request-" + m.CorrelationID
	c := &call{reply: make(chan *client.Message, 1), failed: make(chan error, 1)}
	cs.mu.Lock()
	c.epoch = cs.epoch
	cs.pending[m.CorrelationID] = c
	cs.mu.Unlock()
	defer cs.end(m.CorrelationID, c)
	// The server acks in batches (tens of ms), and the reply often comes
	// first: wait for both at once.
	acked := make(chan error, 1)
	sendCtx, stopSend := context.WithCancel(ctx)
	defer stopSend()
	go func() { acked <- send(sendCtx, m) }()
	for {
		select {
		case r := <-c.reply:
			return cs.handed(r), nil
		case err := <-acked:
			if err != nil {
				return nil, err
			}
			acked = nil
			cs.mu.Lock()
			if cs.epoch == c.epoch {
				// Acked by the session the request was sent in. When a
				// fresh session came meanwhile, the ack may be the old or
				// the new session's: the call then waits for its reply or
				// its timeout.
				c.acked = true
			}
			cs.mu.Unlock()
		case err := <-c.failed:
			select {
			case r := <-c.reply: // the reply came first after all
				return cs.handed(r), nil
			default:
				return nil, err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// handed counts r as handed to its caller.
func (cs *calls) handed(r *client.Message) *client.Message {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.done++
	return r
}

// end forgets the call and remembers its id for late replies. A reply
// that reached the call but not its caller (the call had timed out or
// failed meanwhile) counts as late.
func (cs *calls) end(id string, c *call) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.pending, id)
	select {
	case <-c.reply:
		cs.lateN++
	default:
	}
	if old := cs.order[cs.next]; old != "" {
		delete(cs.recent, old)
	}
	cs.order[cs.next] = id
	cs.next = (cs.next + 1) % len(cs.order)
	cs.recent[id] = struct{}{}
}

// deliver hands m to the call waiting for it, once: a second reply to the
// same call is reported as late.
func (cs *calls) deliver(m *client.Message) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c, ok := cs.pending[m.CorrelationID]
	if !ok {
		return false
	}
	select {
	case c.reply <- m:
	default:
		cs.lateN++ // a second reply while the first is being returned
	}
	return true
}

// late reports whether id belongs to a call that has ended, and counts it.
func (cs *calls) late(id string) bool {
	if id == "" {
		return false
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	_, ok := cs.recent[id]
	if ok {
		cs.lateN++
	}
	return ok
}

// sessionLost starts a new epoch and fails the calls that the previous
// session had acked: their replies would go to that session.
func (cs *calls) sessionLost(err error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.epoch++
	for _, c := range cs.pending {
		if c.acked && c.epoch < cs.epoch {
			c.fail(err)
		}
	}
}

// closed fails every call in flight.
func (cs *calls) closed(err error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range cs.pending {
		c.fail(err)
	}
}

func (c *call) fail(err error) {
	select {
	case c.failed <- err:
	default:
	}
}

// counts returns the calls in flight, the replies handed to callers and
// the late replies dropped.
func (cs *calls) counts() (inFlight, replied, late int) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.pending), cs.done, cs.lateN
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand doc)
	return base64.RawURLEncoding.EncodeToString(b)
}
