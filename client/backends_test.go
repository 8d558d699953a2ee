package client

import (
	"context"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/tethertest"
)

func TestPickLeastRTTAndRandom(t *testing.T) {
	t.Parallel()
	var addrs []string
	for range 3 {
		_, a := tethertest.Serve(t)
		addrs = append(addrs, a)
	}
	for _, tc := range []struct {
		pick Pick
		want func(seen map[string]int) bool
	}{
		{PickLeastRTT, func(seen map[string]int) bool { return len(seen) == 1 && seen[addrs[1]] == 60 }},
		{PickRandom, func(seen map[string]int) bool { return len(seen) == 3 }},
	} {
		cfg, err := newConfig([]Option{WithAddrs(addrs...), WithPick(tc.pick)})
		if err != nil {
			t.Fatal(err)
		}
		bs := newBackends(cfg)
		if _, err := bs.pick(nil, true); err != nil { // connects and watches every backend
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			all := true
			for _, b := range bs.list {
				if h, _, _ := b.snapshot(); h != healthServing {
					all = false
				}
			}
			if all {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("backends never reported SERVING")
			}
			time.Sleep(10 * time.Millisecond)
		}
		for i, b := range bs.list {
			rtt := []time.Duration{5 * time.Millisecond, time.Millisecond, 3 * time.Millisecond}[i]
			b.set(func(b *backend) { b.rtt = rtt })
		}
		seen := map[string]int{}
		for range 60 {
			b, err := bs.pick(nil, true)
			if err != nil {
				t.Fatal(err)
			}
			seen[b.addr]++
		}
		if !tc.want(seen) {
			t.Errorf("%v picked %v", tc.pick, seen)
		}
		bs.close()
	}
}

// The DNS name is resolved again before every attempt: a backend that
// appears later is found without a restart.
func TestDNSIsResolvedBeforeEveryAttempt(t *testing.T) {
	t.Parallel()
	cfg, err := newConfig([]Option{WithDNS("tether.test:7070")})
	if err != nil {
		t.Fatal(err)
	}
	bs := newBackends(cfg)
	defer bs.close()
	answer := []string{"127.0.0.1"}
	bs.lookup = func(_ context.Context, host string) ([]string, error) {
		if host != "tether.test" {
			t.Errorf("looked up %q", host)
		}
		return answer, nil
	}
	if err := bs.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(bs.list) != 1 || bs.list[0].addr != "127.0.0.1:7070" {
		t.Fatalf("backends = %v", addrsOf(bs))
	}
	// The name now points at two addresses (the port is the name's).
	answer = []string{"127.0.0.2", "127.0.0.1"}
	if err := bs.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := addrsOf(bs); len(got) != 2 || got[0] != "127.0.0.1:7070" || got[1] != "127.0.0.2:7070" {
		t.Fatalf("backends after re-resolution = %v", got)
	}
	answer = []string{"127.0.0.2"}
	if err := bs.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := addrsOf(bs); len(got) != 1 || got[0] != "127.0.0.2:7070" {
		t.Fatalf("a vanished address was kept: %v", got)
	}
}

func addrsOf(bs *backends) []string {
	var out []string
	for _, b := range bs.list {
		out = append(out, b.addr)
	}
	return out
}

// An unreachable home is tried once more only when it alone can resume the
// session (sticky); when any backend can, a healthy one is picked at once.
func TestPickUnreachableHome(t *testing.T) {
	t.Parallel()
	var addrs []string
	for range 2 {
		_, a := tethertest.Serve(t)
		addrs = append(addrs, a)
	}
	cfg, err := newConfig([]Option{WithAddrs(addrs...)})
	if err != nil {
		t.Fatal(err)
	}
	bs := newBackends(cfg)
	defer bs.close()
	if _, err := bs.pick(nil, true); err != nil {
		t.Fatal(err)
	}
	home, other := bs.list[0], bs.list[1]
	for _, b := range bs.list {
		// The health watches would overwrite the states set below. The
		// stopped watch's cancel stays set: a nil one would make pick
		// (startLocked) start a new watch, which races the states.
		b.stopWatch()
		<-b.watchDone
	}
	home.set(func(b *backend) { b.health = healthUnreachable })
	other.set(func(b *backend) { b.health = healthServing })
	for _, tc := range []struct {
		sticky bool
		want   *backend
	}{{true, home}, {false, other}} {
		got, err := bs.pick(home, tc.sticky)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("pick(home, sticky=%v) = %s, want %s", tc.sticky, got.addr, tc.want.addr)
		}
	}
}
