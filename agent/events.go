package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// event is one entry of the event log: an SSE event with its id.
type event struct {
	id   uint64
	kind string // the SSE event name: "message" or "state"
	data []byte // one line of JSON
}

// gap is what a reader missed: the events first..last are gone from the
// buffer ("buffer_overflow"), or the reader's Last-Event-ID is one this
// agent never issued ("unknown_id": the agent restarted, and what it
// received before is gone).
type gap struct {
	Reason      string `json:"reason"`
	First       uint64 `json:"first,omitempty"`
	Last        uint64 `json:"last,omitempty"`
	LastEventID uint64 `json:"last_event_id,omitempty"`
}

// eventLog keeps the latest events in a ring, numbered from 1, for
// readers that come and go. It is safe for concurrent use.
type eventLog struct {
	mu      sync.Mutex
	ring    []event
	next    uint64        // id of the next event
	changed chan struct{} // closed and replaced on every add
	readers int
}

func newEventLog(size int) *eventLog {
	return &eventLog{ring: make([]event, size), next: 1, changed: make(chan struct{})}
}

// add appends an event of kind with v as its JSON data.
func (l *eventLog) add(kind string, v any) {
	data, err := json.Marshal(v)
	if err != nil { // v is one of the agent's own types
		panic(fmt.Sprintf("tether/agent: encoding a %s event: %v", kind, err))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.next%uint64(len(l.ring))] = event{id: l.next, kind: kind, data: data}
	l.next++
	close(l.changed)
	l.changed = make(chan struct{})
}

// bounds returns the ids of the oldest and newest events held (0, 0 when
// empty).
func (l *eventLog) bounds() (first, last uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.boundsLocked()
}

func (l *eventLog) boundsLocked() (first, last uint64) {
	if l.next == 1 {
		return 0, 0
	}
	last = l.next - 1
	if n := uint64(len(l.ring)); last > n {
		return last - n + 1, last
	}
	return 1, last
}

// since returns the events after id `after` that the ring still holds, a
// gap when some of them are gone (or `after` was never issued: the agent
// restarted), and a channel closed at the next add.
func (l *eventLog) since(after uint64) ([]event, *gap, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first, last := l.boundsLocked()
	var missed *gap
	switch {
	case after > last:
		missed = &gap{Reason: "unknown_id", LastEventID: after}
		after = 0
	case first > 0 && after+1 < first:
		missed = &gap{Reason: "buffer_overflow", First: after + 1, Last: first - 1}
	}
	var evs []event
	for id := max(after+1, first); first > 0 && id <= last; id++ {
		evs = append(evs, l.ring[id%uint64(len(l.ring))])
	}
	return evs, missed, l.changed
}

// join counts a reader in, up to max.
func (l *eventLog) join(limit int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.readers >= limit {
		return false
	}
	l.readers++
	return true
}

func (l *eventLog) leave() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.readers--
}

func (l *eventLog) readerCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.readers
}

// sseWriteTimeout bounds each write to an event-stream reader: one that
// stops reading is cut off rather than holding its stream forever.
const sseWriteTimeout = 10 * time.Second

// handleEvents serves GET /v1/events: the buffered events after the
// reader's Last-Event-ID (header, or last_event_id query parameter), all
// buffered events without one, then new events as they come.
func (a *Agent) handleEvents(w http.ResponseWriter, r *http.Request) {
	after, err := lastEventID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, false, err.Error())
		return
	}
	if !a.events.join(a.cfg.maxStreams) {
		writeError(w, http.StatusServiceUnavailable, true, fmt.Sprintf("too many event streams open (the limit is %d): close one or retry later", a.cfg.maxStreams))
		return
	}
	defer a.events.leave()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	write := func(s string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := w.Write([]byte(s)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(": tether agent event stream\nretry: 1000\n\n") {
		return
	}
	keepalive := time.NewTicker(a.cfg.keepalive)
	defer keepalive.Stop()
	for {
		evs, missed, changed := a.events.since(after)
		var b strings.Builder
		if missed != nil {
			data, _ := json.Marshal(missed)
			fmt.Fprintf(&b, "event: missed\ndata: %s\n\n", data)
		}
		for _, e := range evs {
			fmt.Fprintf(&b, "id: %d\nevent: %s\ndata: %s\n\n", e.id, e.kind, e.data)
			after = e.id
		}
		if b.Len() > 0 && !write(b.String()) {
			return
		}
		select {
		case <-changed:
		case <-keepalive.C:
			if !write(": keepalive\n\n") {
				return
			}
		case <-r.Context().Done():
			return
		case <-a.stopping:
			return
		}
	}
}

// lastEventID is the id a reconnecting reader saw last; without one, the
// reader gets every buffered event (ids start at 1).
func lastEventID(r *http.Request) (uint64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("Last-Event-ID %q: want an event id, a decimal number", v)
	}
	return id, nil
}
