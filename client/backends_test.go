package client

import (
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/tethertest"
)

func TestPickLeastRTTAndRandom(t *testing.T) {
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
		if _, err := bs.pick(); err != nil { // connects and watches every backend
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
			b, err := bs.pick()
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
