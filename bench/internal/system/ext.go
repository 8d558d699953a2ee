package system

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Capabilities the idle, resume and detection scenarios need beyond
// [System]: a server with lifecycle hooks, idle sessions multiplexed over
// one connection, and a client that says when it noticed its connection
// was gone. A system registers what it supports with [RegisterExt]; a
// scenario that needs a capability a system lacks skips that system and
// says so.

// Hooks are the server-side events the scenarios time. Each may be nil.
type Hooks struct {
	// OnSession runs when a session is established on the server: a fresh
	// one, or (tether) one resumed on a new stream.
	OnSession func(resumed bool)
	// OnSessionID runs beside OnSession with the session's client id,
	// where the system knows it (tether), so that a scenario can tell a
	// session established twice from two sessions.
	OnSessionID func(clientID string, resumed bool)
	// OnDown runs when the server notices that a session's stream is gone
	// (tether: the session detached; raw: the stream's handler ended).
	OnDown func(why string)
	// OnMessage sees every client payload before the App does; it returns
	// true when it handled the payload itself (see [Extra]).
	OnMessage func(c Conn, payload []byte) bool
}

// Ext is what a system offers the extended scenarios.
type Ext struct {
	// NewServer is System.NewServer with hooks.
	NewServer func(app *App, opts ServerOptions, hooks Hooks) (Server, error)
	// DialMux opens one connection to addr that carries idle sessions:
	// Mux.Open adds one, asking for opts.Heartbeat and answering the
	// liveness traffic until Close. Nil when unsupported.
	DialMux func(ctx context.Context, addr string, opts ClientOptions) (Mux, error)
	// DialObserved is System.Dial with onDown, called (once per break) when
	// the client notices its connection is gone. backoffBase, when
	// positive, replaces the client's reconnect backoff base (tether SDK).
	DialObserved func(ctx context.Context, addr string, opts ClientOptions, backoffBase time.Duration, onDown func(why string)) (Client, error)
	// Resumes is true when a Client outlives a broken connection by itself
	// (reconnects and resumes); false when the scenario must dial anew.
	Resumes bool
	// Replays is true when what the server sent into a connection that
	// broke is delivered after the client's resume (tether's resume
	// window); false when it is lost, as with Centrifuge's default
	// channel, which keeps no history.
	Replays bool
	// Bound is the documented server-side detection bound of a frozen or
	// unreachable peer under the profile, and the earliest time a
	// detection is legitimate (no false positive before it).
	Bound func(ServerOptions) (bound, earliest time.Duration)
}

// Mux is one connection carrying many idle sessions (streams).
type Mux interface {
	// Open opens one more session named id; safe for concurrent use.
	Open(ctx context.Context, id string) error
	io.Closer
}

var exts = map[string]Ext{}
var extMu sync.Mutex

// RegisterExt registers the capabilities of the system named name.
func RegisterExt(name string, e Ext) {
	extMu.Lock()
	defer extMu.Unlock()
	exts[name] = e
}

// LookupExt returns name's capabilities.
func LookupExt(name string) (Ext, error) {
	extMu.Lock()
	defer extMu.Unlock()
	e, ok := exts[name]
	if !ok || e.NewServer == nil {
		return Ext{}, fmt.Errorf("system %q has no server hooks for the idle, resume and detection scenarios", name)
	}
	return e, nil
}

// Extra message kinds of the extended scenarios, handled by [Extra] in
// every system's server (before the App, which ignores unknown kinds).
const (
	// KindBurst "B<round>:<count>:<delay ms>" asks the server to send
	// count messages "b<round>:<i>" (i from 1) after delay.
	KindBurst byte = 'B'
	// KindBurstMsg marks a message of a burst.
	KindBurstMsg byte = 'b'
	// KindTagged "T<tag>" is a business message the server records by tag
	// (to find lost and duplicated messages across a restart) and drops.
	KindTagged byte = 'T'
)

// Burst encodes a KindBurst request.
func Burst(round, count int, delay time.Duration) []byte {
	return fmt.Appendf(nil, "B%d:%d:%d", round, count, delay.Milliseconds())
}

// Tally records tagged messages by tag, and the burst messages the server
// could not send, by reason.
type Tally struct {
	mu     sync.Mutex
	seen   map[string]int
	failed map[string]int
}

// Fail records a burst message that could not be sent, and why.
func (t *Tally) Fail(why string) {
	t.mu.Lock()
	if t.failed == nil {
		t.failed = map[string]int{}
	}
	t.failed[why]++
	t.mu.Unlock()
}

// Failures returns the reasons burst messages could not be sent, with
// their counts.
func (t *Tally) Failures() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.failed)
}

// Add records tag.
func (t *Tally) Add(tag string) {
	t.mu.Lock()
	if t.seen == nil {
		t.seen = map[string]int{}
	}
	t.seen[tag]++
	t.mu.Unlock()
}

// Snapshot returns every tag with its count.
func (t *Tally) Snapshot() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.seen))
	for k, v := range t.seen {
		out[k] = v
	}
	return out
}

// sendRetrying sends payload on c, waiting and sending again while c
// refuses it as full (ErrFull).
func sendRetrying(c Conn, payload []byte) error {
	wait := fullWaitMin
	for {
		err := c.Send(payload)
		if !errors.Is(err, ErrFull) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, fullWaitMax)
	}
}

// Extra handles the extended kinds: bursts and tagged messages (counted in
// tally). A burst message the session refuses as full (ErrFull) is sent
// again after a wait, as the App's pusher does; one that fails otherwise
// ends the burst and is recorded in tally (Fail). It returns false for
// every other payload.
func Extra(tally *Tally) func(c Conn, b []byte) bool {
	return func(c Conn, b []byte) bool {
		if len(b) == 0 {
			return false
		}
		switch b[0] {
		case KindTagged:
			tally.Add(string(b[1:]))
			return true
		case KindBurst:
			f := strings.Split(string(b[1:]), ":")
			if len(f) != 3 {
				return true
			}
			round, _ := strconv.Atoi(f[0])
			n, _ := strconv.Atoi(f[1])
			ms, _ := strconv.Atoi(f[2])
			send := func() {
				for i := 1; i <= n; i++ {
					if err := sendRetrying(c, fmt.Appendf(nil, "b%d:%d", round, i)); err != nil {
						tally.Fail(err.Error())
						return
					}
				}
			}
			if ms > 0 {
				time.AfterFunc(time.Duration(ms)*time.Millisecond, send)
			} else {
				send()
			}
			return true
		}
		return false
	}
}
