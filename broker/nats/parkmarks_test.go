package nats

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tetherhq/tether/broker"
)

// A park mark is sent along for its period, keeps the highest seq, and
// lapses after; lapsed marks are pruned as the map grows.
func TestParkMarks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p parkMarks
		a := broker.Session("s1")
		if got := p.last(a); got != 0 {
			t.Fatalf("last before any park = %d, want 0", got)
		}
		p.note(a, 7, time.Second)
		p.note(a, 5, time.Second) // an older park's ack, later
		if got := p.last(a); got != 7 {
			t.Fatalf("last = %d, want 7", got)
		}
		if h := p.header(a); parkedSeq(&nats.Msg{Header: h}) != 7 {
			t.Fatalf("header = %v, want mark 7", h)
		}
		time.Sleep(time.Second)
		if got, h := p.last(a), p.header(a); got != 0 || h != nil {
			t.Fatalf("after the period: last = %d, header %v; want 0, nil", got, h)
		}
		for i := range 2 * marksPrune {
			p.note(broker.Client(string(rune('a'+i%26))+time.Duration(i).String()), uint64(i+1), time.Second)
			if i == marksPrune-1 {
				time.Sleep(time.Second) // the first half lapses
			}
		}
		if n := len(p.m); n > marksPrune+1 {
			t.Fatalf("%d marks kept; want the lapsed half pruned (at most %d)", n, marksPrune+1)
		}
	})
}
