package server

import (
	"fmt"
	"testing"
	"time"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

func TestRecorderKeepsTheMostRecentInOrder(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 3, 5, 7} {
		r := newRecorder(5)
		for i := range n {
			r.add(event{at: time.Unix(int64(i), 0), detail: fmt.Sprint(i)})
		}
		got := r.events()
		want := min(n, 5)
		if len(got) != want {
			t.Fatalf("after %d adds: %d events, want %d", n, len(got), want)
		}
		for i, e := range got {
			if e.GetDetail() != fmt.Sprint(n-want+i) {
				t.Fatalf("after %d adds: event %d is %q, want %d", n, i, e.GetDetail(), n-want+i)
			}
		}
	}
}

// The client's pings have a ring of their own, merged in time order: they
// never push other events out.
func TestRecorderKeepsPingsApart(t *testing.T) {
	t.Parallel()
	r := newRecorder(3)
	r.add(event{at: time.Unix(0, 0), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_CONNECTED})
	for i := range pingsKept + 5 {
		r.add(event{at: time.Unix(int64(i+1), 0), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_PING})
	}
	r.add(event{at: time.Unix(100, 0), kind: tetherv1.SessionEventKind_SESSION_EVENT_KIND_DETACHED})
	got := r.events()
	if len(got) != pingsKept+2 {
		t.Fatalf("%d events; want the connect, %d pings and the detach", len(got), pingsKept)
	}
	if got[0].GetKind() != tetherv1.SessionEventKind_SESSION_EVENT_KIND_CONNECTED || got[len(got)-1].GetKind() != tetherv1.SessionEventKind_SESSION_EVENT_KIND_DETACHED {
		t.Fatalf("first and last: %v, %v", got[0].GetKind(), got[len(got)-1].GetKind())
	}
	for i, e := range got[1 : len(got)-1] {
		if e.GetKind() != tetherv1.SessionEventKind_SESSION_EVENT_KIND_PING || e.GetTime().AsTime().Unix() != int64(i+6) {
			t.Fatalf("event %d = %v at %v; want the ping at %d s", i+1, e.GetKind(), e.GetTime().AsTime().Unix(), i+6)
		}
	}
}
