package main

import (
	"encoding/json"
	"io"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tetherhq/tether/agent"
	"github.com/tetherhq/tether/client"
)

// lines writes JSON objects, one per line, each with a single Write, from
// any number of goroutines: lines never interleave. After a failed write
// it writes nothing more and closes failed.
type lines struct {
	mu     sync.Mutex
	enc    *json.Encoder
	err    error
	failed chan struct{}
}

func newLines(w io.Writer) *lines {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // payloads are shown as sent: <, > and & stay
	return &lines{enc: enc, failed: make(chan struct{})}
}

// write writes v as one line.
func (l *lines) write(v any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	if l.err = l.enc.Encode(v); l.err != nil {
		close(l.failed)
	}
}

// failure is the write error that closed failed, if any.
func (l *lines) failure() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// timestamp formats t as RFC 3339 with nanoseconds.
func timestamp(t time.Time) string { return t.Format(time.RFC3339Nano) }

// stateEvent is a state change of the session.
type stateEvent struct {
	Event        string    `json:"event"` // "state"
	State        string    `json:"state"` // connecting, connected, reconnecting, closed
	Backend      string    `json:"backend,omitempty"`
	SessionID    string    `json:"session_id,omitempty"`
	Resumed      *bool     `json:"resumed,omitempty"`       // on connected
	ResumeStatus string    `json:"resume_status,omitempty"` // on connected
	Lost         *seqRange `json:"lost,omitempty"`
	TookOver     *takeOver `json:"took_over,omitempty"` // on connected, when a fresh session took its client id over
	Error        string    `json:"error,omitempty"`
	Time         string    `json:"time"`
}

// takeOver is what a fresh session inherited from the session of its
// client id that it took over.
type takeOver struct {
	SessionID string    `json:"session_id"`
	Inherited uint64    `json:"inherited"`
	Dropped   *seqRange `json:"dropped,omitempty"`
}

// seqRange is a range of server seqs that will never arrive.
type seqRange struct {
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
}

func newStateEvent(c client.StateChange) stateEvent {
	e := stateEvent{Event: "state", State: c.State.String(), Backend: c.Backend, SessionID: c.SessionID, Time: timestamp(c.Time)}
	if c.State == client.StateConnected {
		resumed := c.Resumed
		e.Resumed, e.ResumeStatus = &resumed, c.ResumeStatus.String()
	}
	if c.Lost != nil {
		e.Lost = &seqRange{First: c.Lost.First, Last: c.Lost.Last}
	}
	if t := c.TookOver; t != nil {
		e.TookOver = &takeOver{SessionID: t.SessionID, Inherited: t.Inherited}
		if t.Dropped != nil {
			e.TookOver.Dropped = &seqRange{First: t.Dropped.First, Last: t.Dropped.Last}
		}
	}
	if c.Err != nil {
		e.Error = oneLine(c.Err)
	}
	return e
}

// lostEvent is a range of server messages that will never arrive (see
// client.Loss).
type lostEvent struct {
	Event     string `json:"event"` // "lost"
	Cause     string `json:"cause"` // gap, resume or take_over
	First     uint64 `json:"first"`
	Last      uint64 `json:"last"`
	SessionID string `json:"session_id,omitempty"` // the session whose seqs first and last are
	Reason    string `json:"reason,omitempty"`
	Time      string `json:"time"`
}

func newLostEvent(l client.Loss) lostEvent {
	return lostEvent{Event: "lost", Cause: l.Cause.String(), First: l.Range.First, Last: l.Range.Last,
		SessionID: l.SessionID, Reason: l.Reason, Time: timestamp(l.Time)}
}

// messageEvent is a received message: the agent API's form of it (see
// agent.Message), between "event" and "time".
type messageEvent struct {
	Event string `json:"event"` // "message"
	Seq   uint64 `json:"seq"`   // always present: hides agent.Message's omitempty seq
	agent.Message
	Time string `json:"time"`
}

func newMessageEvent(m *client.Message, now time.Time) messageEvent {
	return messageEvent{Event: "message", Seq: m.Seq, Message: agent.NewMessage(m), Time: timestamp(now)}
}

// rttEvent is a round-trip time measured by the session's pings.
type rttEvent struct {
	Event   string  `json:"event"` // "rtt"
	MS      float64 `json:"ms"`
	Backend string  `json:"backend"`
	Time    string  `json:"time"`
}

func newRTTEvent(backend string, rtt time.Duration, now time.Time) rttEvent {
	return rttEvent{Event: "rtt", MS: float64(rtt.Microseconds()) / 1000, Backend: backend, Time: timestamp(now)}
}

// errorEvent is a failure.
type errorEvent struct {
	Event string `json:"event"` // "error"
	Error string `json:"error"`
	Time  string `json:"time"`
}

func newErrorEvent(err error, now time.Time) errorEvent {
	return errorEvent{Event: "error", Error: oneLine(err), Time: timestamp(now)}
}

// oneLine is err's message on one line (errors.Join separates with
// newlines).
func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

// writeProto writes m as one line of protojson (lowerCamelCase names, as
// grpcurl and tetherd's /debug/sessions show them), every field included.
func writeProto(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
