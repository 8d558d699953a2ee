package server

import (
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
// events. It is guarded by the session's mutex.
type recorder struct {
	ring []event
	next int
	full bool
}

func newRecorder(n int) recorder { return recorder{ring: make([]event, n)} }

func (r *recorder) add(e event) {
	r.ring[r.next] = e
	r.next++
	if r.next == len(r.ring) {
		r.next, r.full = 0, true
	}
}

// events returns the entries oldest first, as protos.
func (r *recorder) events() []*tetherv1.SessionEvent {
	var out []*tetherv1.SessionEvent
	emit := func(es []event) {
		for _, e := range es {
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
	}
	if r.full {
		emit(r.ring[r.next:])
	}
	emit(r.ring[:r.next])
	return out
}
