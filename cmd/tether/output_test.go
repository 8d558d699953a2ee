package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/client"
)

// The lines connect prints for a loss, and for a fresh session that took
// its client id over, have the shape its help shows.
func TestLossAndTakeOverLines(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	var b bytes.Buffer
	out := newLines(&b)
	out.write(newLostEvent(client.Loss{Cause: client.LossGap, Range: client.SeqRange{First: 4, Last: 6}, SessionID: "s1", Reason: "log full", Time: at}))
	out.write(newStateEvent(client.StateChange{State: client.StateConnected, SessionID: "s2", ResumeStatus: client.ResumeNotRequested, Time: at,
		TookOver: &client.TakeOver{SessionID: "s1", Inherited: 3, Dropped: &client.SeqRange{First: 7, Last: 9}}}))
	want := `{"event":"lost","cause":"gap","first":4,"last":6,"session_id":"s1","reason":"log full","time":"2026-01-02T15:04:05Z"}
{"event":"state","state":"connected","session_id":"s2","resumed":false,"resume_status":"RESUME_STATUS_NOT_REQUESTED","took_over":{"session_id":"s1","inherited":3,"dropped":{"first":7,"last":9}},"time":"2026-01-02T15:04:05Z"}
`
	if got := b.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, strings.TrimSpace(want))
	}
}
