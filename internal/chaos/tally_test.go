package chaos

import (
	"testing"
	"time"
)

func TestTally(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tl := NewTally()
	// Stream a→checker: 1..5 sent; 1, 3, 2 (reordered), 3 again
	// (duplicate), 5 arrive; 4 never does.
	for n := 1; n <= 5; n++ {
		tl.Sent(ClientToServer, "a", checkerID, n, at(float64(n)))
	}
	tl.Sent(ClientToServer, "a", checkerID, 1, at(99)) // a retry keeps the first time
	for _, n := range []int{1, 3, 2, 3, 5} {
		tl.Received(ClientToServer, "a", n)
	}
	if got := tl.Missing(); got != 1 {
		t.Errorf("Missing = %d, want 1", got)
	}
	c, ex := tl.Count(ClientToServer, 5)
	want := Count{Sent: 5, Lost: 1, Unreported: 1, Duplicated: 1, Reordered: 1}
	if c != want || len(ex) != 1 || ex[0] != "a#4" {
		t.Errorf("Count = %+v %v, want %+v [a#4]", c, ex, want)
	}

	// A report of a session the checker came back from before 4 was sent
	// does not cover it (its loss is not that session's); one it came
	// back from after does, whenever it left: 4 found its session, kept
	// detached by the server, or else its sender was told.
	tl.ReceiverTold(checkerID, at(1), at(3.5))
	if c, _ := tl.Count(ClientToServer, 5); c.Unreported != 1 {
		t.Errorf("a report of a session the receiver came back from before the message was sent covered it: %+v", c)
	}
	tl.ReceiverTold(checkerID, at(3.8), at(6))
	if c, _ := tl.Count(ClientToServer, 5); c.Lost != 1 || c.Unreported != 0 {
		t.Errorf("after the checker's report: %+v, want 1 lost, 0 unreported", c)
	}
	if got := tl.ReceivedTotal(); got != 5 {
		t.Errorf("ReceivedTotal = %d, want 5", got)
	}
}

func TestTallyAcceptedAndSenderTold(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	tl := NewTally()
	// s2c to x: 1 accepted at 2 s, 2 accepted at 7 s, 3 given up on.
	for n := 1; n <= 3; n++ {
		tl.Sent(ServerToClient, "x", "x", n, t0)
	}
	tl.Accepted(ServerToClient, "x", 1, t0.Add(2*time.Second))
	tl.Accepted(ServerToClient, "x", 2, t0.Add(7*time.Second))
	tl.SenderTold(ServerToClient, "x", 3)
	// x left at 1 s and came back fresh at 5 s: 1 was queued to the old
	// session (covered), 2 to the new one (not covered).
	tl.ReceiverTold("x", t0.Add(time.Second), t0.Add(5*time.Second))
	c, ex := tl.Count(ServerToClient, 5)
	if want := (Count{Sent: 3, Lost: 3, Unreported: 1}); c != want || len(ex) != 1 || ex[0] != "x#2" {
		t.Errorf("Count = %+v %v, want %+v [x#2]", c, ex, want)
	}
	if c, _ := tl.Count(ClientToServer, 5); c != (Count{}) {
		t.Errorf("the other direction = %+v, want nothing", c)
	}
}

func TestDirectionAndModeStrings(t *testing.T) {
	t.Parallel()
	for got, want := range map[string]string{
		ServerToClient.String(): "s2c", ClientToServer.String(): "c2s",
		Send.String(): "Send", SendWait.String(): "SendWait",
		Memory.String(): "memory", NATS.String(): "nats", NATSCluster.String(): "nats-r3",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
