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

// eventOverhead is what an event costs beyond its data, counted against
// the byte budget: its id, kind and SSE framing, roughly.
const eventOverhead = 64

// eventLog keeps the latest events for readers that come and go, bounded
// by count and by bytes (the oldest go first). Ids start at a base taken
// from the clock when the log is made (microseconds since 1970), so an id
// a reader got from an earlier agent process is below the base and
// recognisably not this log's. It is safe for concurrent use.
type eventLog struct {
	mu       sync.Mutex
	ring     []event // holds n events from head, oldest first
	head, n  int
	bytes    int64 // held, with eventOverhead each
	maxBytes int64
	base     uint64        // id of the first event ever added
	next     uint64        // id of the next event
	changed  chan struct{} // closed and replaced on every add
	readers  map[string]int
	total    int
}

func newEventLog(size int, maxBytes int64) *eventLog {
	base := uint64(time.Now().UnixMicro())
	if base == 0 {
		base = 1
	}
	return &eventLog{ring: make([]event, size), maxBytes: maxBytes, base: base, next: base,
		changed: make(chan struct{}), readers: make(map[string]int)}
}

func eventSize(e event) int64 { return int64(len(e.data)+len(e.kind)) + eventOverhead }

// add appends an event of kind with v as its JSON data, evicting the
// oldest events beyond the count or the byte budget (the newest stays,
// whatever its size).
func (l *eventLog) add(kind string, v any) {
	data, err := json.Marshal(v)
	if err != nil { // v is one of the agent's own types
		panic(fmt.Sprintf("tether/agent: encoding a %s event: %v", kind, err))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := event{id: l.next, kind: kind, data: data}
	l.next++
	if l.n == len(l.ring) {
		l.dropOldest()
	}
	l.ring[(l.head+l.n)%len(l.ring)] = e
	l.n++
	l.bytes += eventSize(e)
	for l.n > 1 && l.bytes > l.maxBytes {
		l.dropOldest()
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *eventLog) dropOldest() {
	old := &l.ring[l.head]
	l.bytes -= eventSize(*old)
	*old = event{}
	l.head = (l.head + 1) % len(l.ring)
	l.n--
}

// bounds returns the ids of the oldest and newest events held (0, 0 when
// empty).
func (l *eventLog) bounds() (first, last uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.boundsLocked()
}

func (l *eventLog) boundsLocked() (first, last uint64) {
	if l.n == 0 {
		return 0, 0
	}
	return l.ring[l.head].id, l.next - 1
}

// since returns the events after id `after` that the log still holds, a
// gap when some of them are gone or `after` was never issued by this log
// (the agent restarted), and a channel closed at the next add. A reader
// without an id (hasID false) gets every held event and no gap.
func (l *eventLog) since(after uint64, hasID bool) ([]event, *gap, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var missed *gap
	switch {
	case !hasID:
		after = 0
	case after < l.base || after >= l.next:
		missed = &gap{Reason: "unknown_id", LastEventID: after}
		after = 0
	case l.n > 0 && after+1 < l.ring[l.head].id:
		missed = &gap{Reason: "buffer_overflow", First: after + 1, Last: l.ring[l.head].id - 1}
	}
	var evs []event
	for i := range l.n {
		if e := l.ring[(l.head+i)%len(l.ring)]; e.id > after {
			evs = append(evs, e)
		}
	}
	return evs, missed, l.changed
}

// join counts a reader of caller in, up to limit in all and perCaller
// for caller; it says which limit is reached.
func (l *eventLog) join(caller string, limit, perCaller int) (status int, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= limit {
		return http.StatusServiceUnavailable, fmt.Sprintf("too many event streams open (the limit is %d): close one or retry later", limit)
	}
	if l.readers[caller] >= perCaller {
		return http.StatusTooManyRequests, fmt.Sprintf("%s has %d event streams open, the limit per caller: close one", caller, perCaller)
	}
	l.total++
	l.readers[caller]++
	return 0, ""
}

func (l *eventLog) leave(caller string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.readers[caller]--; l.readers[caller] <= 0 {
		delete(l.readers, caller)
	}
}

func (l *eventLog) readerCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// sseWriteTimeout bounds each write to an event-stream reader: one that
// stops reading is cut off rather than holding its stream forever.
const sseWriteTimeout = 10 * time.Second

// handleEvents serves GET /v1/events: the buffered events after the
// reader's Last-Event-ID (header, or last_event_id query parameter), all
// buffered events without one, then new events as they come.
func (a *Agent) handleEvents(w http.ResponseWriter, r *http.Request) {
	after, hasID, err := lastEventID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, false, err.Error())
		return
	}
	caller := peerFrom(r.Context()).caller
	if code, msg := a.events.join(caller, a.cfg.maxStreams, a.cfg.callerStreams); code != 0 {
		writeError(w, code, true, msg)
		return
	}
	defer a.events.leave(caller)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// Each event is written on its own (net/http buffers the writes), and
	// the batch is flushed at its end: nothing holds a copy of the buffer.
	var buf []byte
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		_, err := w.Write(b)
		return err == nil
	}
	flush := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		return rc.Flush() == nil
	}
	if !write([]byte(": tether agent event stream\nretry: 1000\n\n")) || !flush() {
		return
	}
	keepalive := time.NewTicker(a.cfg.keepalive)
	defer keepalive.Stop()
	for {
		evs, missed, changed := a.events.since(after, hasID)
		if missed != nil {
			data, _ := json.Marshal(missed)
			if !write(fmt.Appendf(buf[:0], "event: missed\ndata: %s\n\n", data)) {
				return
			}
		}
		for _, e := range evs {
			buf = fmt.Appendf(buf[:0], "id: %d\nevent: %s\ndata: ", e.id, e.kind)
			if !write(buf) || !write(e.data) || !write([]byte("\n\n")) {
				return
			}
			after, hasID = e.id, true
		}
		if (missed != nil || len(evs) > 0) && !flush() {
			return
		}
		select {
		case <-changed:
		case <-keepalive.C:
			if !write([]byte(": keepalive\n\n")) || !flush() {
				return
			}
		case <-r.Context().Done():
			return
		case <-a.stopping:
			return
		}
	}
}

// lastEventID is the id a reconnecting reader saw last, and whether it
// sent one; without one, the reader gets every buffered event.
func lastEventID(r *http.Request) (uint64, bool, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, false, nil
	}
	id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("Last-Event-ID %q: want an event id, a decimal number", v)
	}
	return id, true, nil
}
