package server

import (
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// event is one flight-recorder entry.
type event struct {
	at     time.Time
	kind   tetherv1.SessionEventKind
	detail string
	rtt    time.Duration
	resume tetherv1.ResumeStatus
}

// pingsKept is how many of the client's most recent pings a flight
// recorder keeps, apart from its other events: a client that drives the
// heartbeat pings all its life, and its pings must neither push the
// connects and resumes out of the ring nor cost an idle session more than
// a few bytes each.
const pingsKept = 16

// recorder is a session's flight recorder: a ring of its most recent
// events, and a smaller ring of the times of the client's most recent
// pings. Each grows to its size as events come, so a quiet session pays
// for the few events it has. It is guarded by the session's mutex.
type recorder struct {
	ring     []event
	size     int
	next     int // where the next event goes once the ring is full
	full     bool
	pings    []int64 // Unix nanoseconds of SESSION_EVENT_KIND_PING events
	pingNext int     // where the next ping goes once pings is full
}

func newRecorder(n int) recorder { return recorder{size: n} }

func (r *recorder) add(e event) {
	if e.kind == tetherv1.SessionEventKind_SESSION_EVENT_KIND_PING {
		r.addPing(e.at)
		return
	}
	if !r.full {
		r.ring = append(r.ring, e)
		r.full = len(r.ring) == r.size
		return
	}
	r.ring[r.next] = e
	r.next = (r.next + 1) % r.size
}

func (r *recorder) addPing(at time.Time) {
	if len(r.pings) < pingsKept {
		r.pings = append(r.pings, at.UnixNano())
		return
	}
	r.pings[r.pingNext] = at.UnixNano()
	r.pingNext = (r.pingNext + 1) % pingsKept
}

// ordered returns a copy of the entries, the pings among them, oldest
// first.
func (r *recorder) ordered() []event {
	events := append(slices.Clone(r.ring[r.next:]), r.ring[:r.next]...)
	if len(r.pings) == 0 {
		return events
	}
	pings := append(slices.Clone(r.pings[r.pingNext:]), r.pings[:r.pingNext]...)
	out := make([]event, 0, len(events)+len(pings))
	for len(events) > 0 || len(pings) > 0 {
		if len(pings) > 0 && (len(events) == 0 || pings[0] < events[0].at.UnixNano()) {
			out = append(out, event{at: time.Unix(0, pings[0]), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_PING})
			pings = pings[1:]
			continue
		}
		out = append(out, events[0])
		events = events[1:]
	}
	return out
}

// events returns the entries oldest first, as protos.
func (r *recorder) events() []*tetherv1.SessionEvent {
	var out []*tetherv1.SessionEvent
	for _, e := range r.ordered() {
		pe := &tetherv1.SessionEvent{
			Time:         timestamppb.New(e.at),
			Kind:         e.kind,
			Detail:       e.detail,
			ResumeStatus: e.resume,
		}
		if e.rtt > 0 {
			pe.Rtt = durationpb.New(e.rtt)
		}
		out = append(out, pe)
	}
	return out
}
