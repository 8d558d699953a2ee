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

// recorder is a session's flight recorder: a ring of its most recent
// events. It grows to its size as events come, so a quiet session pays for
// the few events it has. It is guarded by the session's mutex.
type recorder struct {
	ring []event
	size int
	next int // where the next event goes once the ring is full
	full bool
}

func newRecorder(n int) recorder { return recorder{size: n} }

func (r *recorder) add(e event) {
	if !r.full {
		r.ring = append(r.ring, e)
		r.full = len(r.ring) == r.size
		return
	}
	r.ring[r.next] = e
	r.next = (r.next + 1) % r.size
}

// ordered returns a copy of the entries, oldest first.
func (r *recorder) ordered() []event {
	return append(slices.Clone(r.ring[r.next:]), r.ring[:r.next]...)
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
