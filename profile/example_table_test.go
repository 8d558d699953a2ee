package profile_test

import (
	"fmt"

	"github.com/tetherhq/tether/profile"
)

// ExampleTable prints the built-in profiles' table, as the README embeds it.
func ExampleTable() {
	fmt.Print(profile.Table(profile.Datacenter(), profile.Default(), profile.Mobile()))
	// Output:
	// | profile | heartbeat (interval × misses + grace) | worst-case detection | detection once an RTT is known, low RTT | heartbeats/hour per side, idle session | server keepalive Time / Timeout | enforcement MinTime | client keepalive Time / Timeout | TCP keepalive idle / interval / count | safe under a 30s NAT idle timer | adaptive heartbeat (SDK) |
	// | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
	// | datacenter | 1s × 3 + 500ms | 3.5s | 2s | 3600 | 10s / 5s | 5s | 10s / 5s | 2s / 1s / 2 | yes | no |
	// | default | 15s × 3 + 5s | 50s | 20s | 240 | 1m / 20s | 10s | 30s / 20s | 30s / 5s / 4 | yes | no |
	// | mobile | 25s × 3 + 10s | 1m25s | 35s | 144 | 6m / 30s | 10s | 1m / 30s | 45s / 10s / 4 | yes | yes |
}

func ExampleLookup() {
	p, err := profile.Lookup("mobile")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.DetectionTime(), p.HeartbeatsPerHour(), p.NATSafe(profile.CommonNATIdle))
	_, err = profile.Lookup("satellite")
	fmt.Println(err)
	// Output:
	// 1m25s 144 true
	// profile: unknown profile "satellite" (valid: datacenter, default, mobile)
}
