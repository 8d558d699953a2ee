package server

import (
	"fmt"
	"testing"
	"time"
)

func TestRecorderKeepsTheMostRecentInOrder(t *testing.T) {
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
