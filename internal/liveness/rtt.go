package liveness

import "time"

// RTT is a smoothed round-trip time and its variation, kept as TCP keeps
// them (RFC 6298, section 2): the first sample R sets SRTT = R and
// RTTVAR = R/2; each later one sets RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R|,
// then SRTT = 7/8·SRTT + 1/8·R. The zero value has no sample. It is not
// safe for concurrent use.
type RTT struct {
	srtt, rttvar time.Duration
	n            int
}

// Add takes in one sample. A negative sample (a clock that stepped) is
// ignored.
func (r *RTT) Add(sample time.Duration) {
	if sample < 0 {
		return
	}
	if r.n == 0 {
		r.srtt, r.rttvar = sample, sample/2
	} else {
		r.rttvar = (3*r.rttvar + (r.srtt - sample).Abs()) / 4
		r.srtt = (7*r.srtt + sample) / 8
	}
	r.n++
}

// Samples returns how many samples were taken in.
func (r *RTT) Samples() int { return r.n }

// SRTT returns the smoothed round-trip time.
func (r *RTT) SRTT() time.Duration { return r.srtt }

// RTTVAR returns the round-trip time's variation.
func (r *RTT) RTTVAR() time.Duration { return r.rttvar }

// RTO returns SRTT + 4·RTTVAR: the round trip that a late answer
// exceeds only rarely.
func (r *RTT) RTO() time.Duration { return r.srtt + 4*r.rttvar }

// Timeout is the RTT-derived dead-peer timeout: a peer is dead after
//
//	min(max, interval + max(Floor, Multiplier × (SRTT + 4·RTTVAR)))
//
// of silence, where max is the fixed rule (interval × misses + grace).
// The zero value (Multiplier 0) is the fixed rule alone.
type Timeout struct {
	// Floor is the least silence past the heartbeat interval.
	Floor time.Duration
	// Multiplier is k in k × (SRTT + 4·RTTVAR); 0 turns the rule off.
	Multiplier int
}

// Enabled reports whether the RTT-derived rule applies.
func (t Timeout) Enabled() bool { return t.Multiplier > 0 }

// DeadAfter is how long a side waits, receiving nothing, before it
// declares its peer dead: fixed, the fixed rule's bound, when the rule is
// off or r has no sample yet; otherwise the formula above, never below
// interval + Floor (unless fixed is) and never above fixed.
func (t Timeout) DeadAfter(interval, fixed time.Duration, r *RTT) time.Duration {
	if !t.Enabled() || r == nil || r.Samples() == 0 {
		return fixed
	}
	past := max(t.Floor, time.Duration(t.Multiplier)*r.RTO())
	return min(fixed, interval+past)
}

// Fixed is the fixed rule: interval × misses + grace.
func Fixed(interval time.Duration, misses int, grace time.Duration) time.Duration {
	return interval*time.Duration(max(misses, 1)) + grace
}
