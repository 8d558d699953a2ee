package liveness

import (
	"testing"
	"time"
)

func TestRTTFollowsRFC6298(t *testing.T) {
	t.Parallel()
	var r RTT
	r.Add(100 * time.Millisecond)
	if r.SRTT() != 100*time.Millisecond || r.RTTVAR() != 50*time.Millisecond || r.RTO() != 300*time.Millisecond {
		t.Fatalf("after one sample: srtt %v rttvar %v rto %v", r.SRTT(), r.RTTVAR(), r.RTO())
	}
	r.Add(200 * time.Millisecond)
	// rttvar = 3/4·50 + 1/4·100 = 62.5; srtt = 7/8·100 + 1/8·200 = 112.5.
	if r.SRTT() != 112500*time.Microsecond || r.RTTVAR() != 62500*time.Microsecond {
		t.Fatalf("after two samples: srtt %v rttvar %v", r.SRTT(), r.RTTVAR())
	}
	r.Add(-time.Second)
	if r.Samples() != 2 {
		t.Fatalf("a negative sample was taken: %d samples", r.Samples())
	}
}

func TestDeadAfter(t *testing.T) {
	t.Parallel()
	tm := Timeout{Floor: time.Second, Multiplier: 3}
	fixed := Fixed(time.Second, 3, 500*time.Millisecond)
	var none RTT
	if got := tm.DeadAfter(time.Second, fixed, &none); got != fixed {
		t.Errorf("no sample: %v, want the fixed %v", got, fixed)
	}
	fast := RTT{}
	fast.Add(50 * time.Microsecond)
	if got := tm.DeadAfter(time.Second, fixed, &fast); got != 2*time.Second {
		t.Errorf("loopback: %v, want interval + floor, 2s", got)
	}
	slow := RTT{}
	slow.Add(200 * time.Millisecond) // rto 600ms, ×3 = 1.8s
	if got := tm.DeadAfter(time.Second, fixed, &slow); got != 2800*time.Millisecond {
		t.Errorf("200ms RTT: %v, want 2.8s", got)
	}
	huge := RTT{}
	huge.Add(time.Second)
	if got := tm.DeadAfter(time.Second, fixed, &huge); got != fixed {
		t.Errorf("1s RTT: %v, want the fixed bound %v", got, fixed)
	}
	if got := (Timeout{}).DeadAfter(time.Second, fixed, &fast); got != fixed {
		t.Errorf("rule off: %v, want %v", got, fixed)
	}
}

// converge runs rounds heartbeats of l through a NAT that forgets after
// natIdle (a heartbeat after a longer silence is lost), from now, and
// returns the time after them.
func converge(t *testing.T, l *Learner, natIdle time.Duration, now time.Time, rounds int) time.Time {
	t.Helper()
	for range rounds {
		iv := l.Interval()
		now = now.Add(iv)
		if iv >= natIdle {
			l.Lost(now)
			continue
		}
		l.Beat(iv, now)
	}
	return now
}

func TestLearnerConverges(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	for _, nat := range []time.Duration{30 * time.Second, 120 * time.Second, 200 * time.Second} {
		l := NewLearner(25*time.Second, 10*time.Second, 5*time.Minute, 24*time.Hour, Learned{}, now)
		converge(t, l, nat, now, 200)
		got := l.Interval()
		if got >= nat || float64(nat)/float64(got) > 1.2 || !l.Done() {
			t.Errorf("NAT %v: interval %v (done %v), want below it and within 1.2×", nat, got, l.Done())
		}
	}
}

func TestLearnerRelearnsAShorterTimer(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	l := NewLearner(25*time.Second, 10*time.Second, 5*time.Minute, 24*time.Hour, Learned{}, now)
	now = converge(t, l, 120*time.Second, now, 200)
	converge(t, l, 45*time.Second, now, 200)
	if got := l.Interval(); got >= 45*time.Second || float64(45*time.Second)/float64(got) > 1.2 {
		t.Fatalf("after the timer shrank to 45s: interval %v", got)
	}
}

func TestLearnerReprobes(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	saved := Learned{Good: 100 * time.Second, Failed: 104 * time.Second, At: now}
	l := NewLearner(25*time.Second, 10*time.Second, 5*time.Minute, time.Hour, saved, now.Add(2*time.Hour))
	if l.Interval() != 100*time.Second || l.State().Failed != 0 {
		t.Fatalf("stale state: interval %v, state %+v; want 100s and the failure forgotten", l.Interval(), l.State())
	}
	fresh := NewLearner(25*time.Second, 10*time.Second, 5*time.Minute, time.Hour, saved, now.Add(time.Minute))
	if !fresh.Done() || fresh.State().Failed != 104*time.Second {
		t.Fatalf("fresh state: %+v, done %v", fresh.State(), fresh.Done())
	}
	// Beats at a converged interval past the reprobe period start a probe.
	when := now.Add(2 * time.Hour)
	for range confirmBeats {
		fresh.Beat(100*time.Second, when)
	}
	if fresh.Interval() <= 100*time.Second {
		t.Fatalf("no probe after the reprobe period: %v", fresh.Interval())
	}
}

func TestLearnerIgnoresBusyBeats(t *testing.T) {
	t.Parallel()
	l := NewLearner(25*time.Second, 10*time.Second, 5*time.Minute, time.Hour, Learned{}, time.Unix(0, 0))
	for range 10 {
		if l.Beat(time.Second, time.Unix(0, 0)) {
			t.Fatal("a beat after a short silence moved the interval")
		}
	}
}
