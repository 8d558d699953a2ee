package chaos

import (
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Direction is one way messages go.
type Direction int

// The two directions.
const (
	// ServerToClient is the Publish RPC to each session's client id.
	ServerToClient Direction = iota
	// ClientToServer is each session's Send or SendWait to the checker's
	// client id.
	ClientToServer
)

// String returns "s2c" or "c2s".
func (d Direction) String() string {
	if d == ServerToClient {
		return "s2c"
	}
	return "c2s"
}

// Count is what happened to the numbered messages of one direction.
type Count struct {
	// Sent is how many numbered messages were sent (each counted once,
	// however often it was retried).
	Sent int `json:"sent"`
	// Lost is how many never arrived; Unreported is how many of those
	// nobody was told about: neither the sender (an error from Publish or
	// SendWait, or a Send failure report) nor the receiver (a session that
	// came back not resumed, or with a lost range, after the message was
	// sent).
	Lost       int `json:"lost"`
	Unreported int `json:"unreported"`
	// Duplicated is how many extra copies arrived.
	Duplicated int `json:"duplicated"`
	// Reordered is how many arrived after a later message of the same
	// stream.
	Reordered int `json:"reordered"`
}

// Tally counts numbered messages per direction and stream (a stream is
// one sender and one receiver: the publisher to one session, or one
// session to the checker). Its methods are safe for concurrent use.
type Tally struct {
	mu      sync.Mutex
	streams [2]map[string]*stream
	gaps    map[string][]gap // by receiver: the sessions it reported lost
}

// gap is a session its receiver reported lost: it left StateConnected at
// left and came back at back, not resumed or with a lost range.
type gap struct{ left, back time.Time }

// stream is one sender's numbered messages to one receiver.
type stream struct {
	receiver string
	sentAt   map[int]time.Time // first attempt
	accepted map[int]time.Time // when the server said it queued it, if it did
	reported map[int]bool      // the sender was told it failed
	received map[int]int
	highest  int
	reorders int
	// overtaken names the first few reordered or repeated arrivals, as
	// "n after m" or "n again after m" (m the highest that had arrived).
	overtaken []string
}

// NewTally returns an empty Tally.
func NewTally() *Tally {
	return &Tally{
		streams: [2]map[string]*stream{{}, {}},
		gaps:    map[string][]gap{},
	}
}

func (t *Tally) streamLocked(d Direction, name, receiver string) *stream {
	s := t.streams[d][name]
	if s == nil {
		s = &stream{receiver: receiver, sentAt: map[int]time.Time{}, accepted: map[int]time.Time{}, reported: map[int]bool{}, received: map[int]int{}}
		t.streams[d][name] = s
	}
	return s
}

// Sent records the first attempt to send message n of stream name, bound
// for receiver, at time at. Later calls for the same message do nothing.
func (t *Tally) Sent(d Direction, name, receiver string, n int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.streamLocked(d, name, receiver)
	if _, ok := s.sentAt[n]; !ok {
		s.sentAt[n] = at
	}
}

// Accepted records that the server said, at time at, that it queued
// message n to its receiver's session (a Publish that reached a session).
func (t *Tally) Accepted(d Direction, name string, n int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.streams[d][name]; s != nil {
		s.accepted[n] = at
	}
}

// SenderTold records that the sender of message n was told it failed.
func (t *Tally) SenderTold(d Direction, name string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.streams[d][name]; s != nil {
		s.reported[n] = true
	}
}

// Received records that message n of stream name arrived.
func (t *Tally) Received(d Direction, name string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.streamLocked(d, name, "")
	switch {
	case s.received[n] == 0 && n < s.highest:
		s.reorders++
		if len(s.overtaken) < 3 {
			s.overtaken = append(s.overtaken, strconv.Itoa(n)+" after "+strconv.Itoa(s.highest))
		}
	case s.received[n] > 0 && len(s.overtaken) < 3:
		s.overtaken = append(s.overtaken, strconv.Itoa(n)+" again after "+strconv.Itoa(s.highest))
	}
	s.received[n]++
	s.highest = max(s.highest, n)
}

// ReceiverTold records that receiver's session, which it left at time
// left, came back at time back without what it held: not resumed, or with
// a lost seq range. That report covers each undelivered message that the
// server accepted into the session before back (it can only have been
// queued to the old session) and, when the server's acceptance is not
// known (Send), each one sent before back. A message sent after the
// receiver left either found its session, detached but kept by the server
// (the memory broker keeps it until the resume window ends or the node
// stops), was queued to it and is lost with it, which back reports; or
// found no session at all, and then its sender is told (NOT_FOUND).
func (t *Tally) ReceiverTold(receiver string, left, back time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gaps[receiver] = append(t.gaps[receiver], gap{left: left, back: back})
}

// Missing returns how many sent messages have not arrived yet.
func (t *Tally) Missing() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	missing := 0
	for _, m := range t.streams {
		for _, s := range m {
			for n := range s.sentAt {
				if s.received[n] == 0 {
					missing++
				}
			}
		}
	}
	return missing
}

// ReceivedTotal returns how many messages, copies included, have arrived.
func (t *Tally) ReceivedTotal() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	total := 0
	for _, m := range t.streams {
		for _, s := range m {
			for _, c := range s.received {
				total += c
			}
		}
	}
	return total
}

// Reorders returns up to max examples of reordered or repeated arrivals
// in direction d, as "stream#n after m" or "stream#n again after m".
func (t *Tally) Reorders(d Direction, max int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := slices.Sorted(maps.Keys(t.streams[d]))
	var out []string
	for _, name := range names {
		for _, o := range t.streams[d][name].overtaken {
			if len(out) == max {
				return out
			}
			out = append(out, name+"#"+o)
		}
	}
	return out
}

// Count returns the counts of direction d so far, and up to max examples
// of lost messages that nobody was told about, as "stream#n".
func (t *Tally) Count(d Direction, maxExamples int) (Count, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var c Count
	var examples []string
	names := make([]string, 0, len(t.streams[d]))
	for name := range t.streams[d] {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s := t.streams[d][name]
		c.Reordered += s.reorders
		for n, k := range s.received {
			if _, sent := s.sentAt[n]; sent && k > 1 {
				c.Duplicated += k - 1
			}
		}
		ns := make([]int, 0, len(s.sentAt))
		for n := range s.sentAt {
			ns = append(ns, n)
		}
		slices.Sort(ns)
		for _, n := range ns {
			c.Sent++
			if s.received[n] > 0 {
				continue
			}
			c.Lost++
			if s.reported[n] || t.toldLocked(s, n) {
				continue
			}
			c.Unreported++
			if len(examples) < maxExamples {
				examples = append(examples, name+"#"+strconv.Itoa(n))
			}
		}
	}
	return c, examples
}

// toldLocked reports whether the receiver of s reported the loss of a
// session that held message n (see ReceiverTold).
func (t *Tally) toldLocked(s *stream, n int) bool {
	accepted, ok := s.accepted[n]
	for _, g := range t.gaps[s.receiver] {
		if ok && g.back.After(accepted) || !ok && g.back.After(s.sentAt[n]) {
			return true
		}
	}
	return false
}
