package liveness

import "time"

// Learned is what a [Learner] knows about one network: the longest
// interval confirmed to keep the path alive, the shortest one seen to
// lose it (0: none yet) and when the search last moved.
type Learned struct {
	Good   time.Duration `json:"good"`
	Failed time.Duration `json:"failed,omitempty"`
	At     time.Time     `json:"at"`
}

// The search's constants.
const (
	// confirmBeats is how many heartbeats in a row, each after a full
	// interval of silence, confirm an interval as good.
	confirmBeats = 3
	// resolution ends the search once the failed interval is within
	// 1/resolution of the good one (5 %): heartbeats per hour are then at
	// most about 1.05 × the fewest that keep the path alive.
	resolution = 20
	// suspectLosses is how many losses in a row at the good interval (with
	// no confirmation between) revoke it: one loss may be an outage, two
	// say the path's timer shrank.
	suspectLosses = 2
)

// Learner searches for the longest heartbeat interval a path keeps alive,
// the way messaging apps probe a NAT's idle timer: it starts at a safe
// interval, grows it by half while heartbeats after a full interval of
// silence are answered (confirmBeats in a row at each step), and on a loss
// that follows such a silence goes back to the last good interval; after
// a loss it bisects between the good and the failed interval until they are
// within 5 %, and then settles 5 % below the good one. Two losses in a row
// at the interval in use (the path's timer shrank) revoke the good one:
// the search restarts from half of it (at least the minimum, at most the
// base) below the interval that failed. Once the search has ended, it
// starts again (upwards from the good interval) after the reprobe period,
// as the path's timer may have grown. It is not safe for concurrent use.
type Learner struct {
	base, lo, hi time.Duration
	reprobe      time.Duration
	good, failed time.Duration
	cur          time.Duration
	at           time.Time // when good or failed last changed
	streak       int       // confirmations at cur
	suspects     int       // losses in a row at good
}

// NewLearner returns a Learner that starts from base (an interval taken to
// be safe) within [lo, hi], from what was learned before (zero: nothing),
// probing again after reprobe. A saved search older than reprobe keeps its
// good interval and forgets its failed one.
func NewLearner(base, lo, hi, reprobe time.Duration, saved Learned, now time.Time) *Learner {
	l := &Learner{base: base, lo: lo, hi: hi, reprobe: reprobe, good: saved.Good, failed: saved.Failed, at: saved.At}
	if l.good <= 0 {
		l.good, l.failed, l.at = base, 0, now
	}
	if l.at.IsZero() || now.Sub(l.at) >= reprobe {
		l.failed, l.at = 0, now
	}
	l.SetBounds(lo, hi)
	return l
}

// SetBounds changes the bounds (the server's, from Welcome) and clamps
// the search into them.
func (l *Learner) SetBounds(lo, hi time.Duration) {
	if hi < lo {
		hi = lo
	}
	l.lo, l.hi = lo, hi
	l.good = clamp(l.good, lo, hi)
	if l.failed > 0 && l.failed <= l.good {
		l.failed = 0
	}
	if l.cur == 0 {
		l.cur = l.rest()
	}
	l.cur = clamp(l.cur, lo, hi)
}

// Interval returns the interval to heartbeat at now.
func (l *Learner) Interval() time.Duration { return l.cur }

// State returns what was learned, for a store.
func (l *Learner) State() Learned { return Learned{Good: l.good, Failed: l.failed, At: l.at} }

// Probing reports whether the interval in use is beyond the good one.
func (l *Learner) Probing() bool { return l.cur > l.good }

// Done reports whether the search ended: the failed interval is within 5 %
// of the good one, or the good one is the maximum.
func (l *Learner) Done() bool {
	return l.good >= l.hi || l.failed > 0 && l.failed-l.good <= l.failed/resolution
}

// FullSilence reports whether a heartbeat sent after idle of silence on
// the path tests the interval in use: idle is at least 7/8 of it (the
// round trip of the previous one, and timer slack, take the rest).
func (l *Learner) FullSilence(idle time.Duration) bool { return idle >= l.cur-l.cur/8 }

// Beat takes in a heartbeat answered after idle of silence, and reports
// whether the interval changed.
func (l *Learner) Beat(idle time.Duration, now time.Time) bool {
	if !l.FullSilence(idle) {
		return false
	}
	l.suspects = 0
	if l.streak++; l.streak < confirmBeats {
		return false
	}
	l.streak = 0
	prev := l.cur
	if l.cur > l.good {
		l.good, l.at = l.cur, now
	}
	if l.Done() && l.failed > 0 && now.Sub(l.at) >= l.reprobe {
		l.failed, l.at = 0, now // the path's timer may have grown
	}
	if l.Done() {
		l.cur = l.rest()
	} else {
		l.cur = l.next()
	}
	return l.cur != prev
}

// Lost takes in the loss of the path after a heartbeat that followed a
// full interval of silence, and reports whether the interval changed.
func (l *Learner) Lost(now time.Time) bool {
	l.streak = 0
	if l.cur > l.good {
		l.failed, l.at = l.cur, now
		l.cur = l.rest()
		return true
	}
	if l.suspects++; l.suspects < suspectLosses {
		return false
	}
	l.suspects = 0
	l.failed, l.at = l.good, now
	l.good = clamp(min(l.base, l.good/2), l.lo, l.hi)
	if l.good >= l.failed { // nothing lower to fall back to
		l.failed = 0
	}
	l.cur = l.good
	return true
}

// rest is the interval to use between probes: the good one or, once the
// search ended, 5 % below it (at least the minimum), a margin for timer
// slack and latency on a real path whose timer lies just above it.
func (l *Learner) rest() time.Duration {
	if !l.Done() || l.failed == 0 {
		return l.good
	}
	return clamp((l.good - l.good/resolution).Round(time.Second), l.lo, l.good)
}

// next is the interval to probe after good: half again as long while no
// interval failed, else halfway to the failed one; rounded to a second.
func (l *Learner) next() time.Duration {
	n := l.good * 3 / 2
	if l.failed > 0 {
		n = (l.good + l.failed) / 2
	}
	n = clamp(n.Round(time.Second), l.lo, l.hi)
	if n <= l.good {
		return l.good
	}
	return n
}

func clamp(d, lo, hi time.Duration) time.Duration { return min(max(d, lo), hi) }
