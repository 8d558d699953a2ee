package profile

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// tableHeader names the columns [Table] renders, in order.
var tableHeader = []string{
	"profile",
	"heartbeat (interval × misses + grace)",
	"worst-case detection",
	"detection once an RTT is known, low RTT",
	"heartbeats/hour per side, idle session",
	"server keepalive Time / Timeout",
	"enforcement MinTime",
	"client keepalive Time / Timeout",
	"TCP keepalive idle / interval / count",
	"safe under a " + formatDuration(CommonNATIdle) + " NAT idle timer",
	"adaptive heartbeat (SDK)",
}

// Table renders the profiles as a Markdown table, one row each in the order
// given, with the numbers they imply: detection time, heartbeats per hour
// ([Profile.HeartbeatsPerHour]), detection under the RTT-derived timeout
// at a negligible RTT ([Profile.RTTDetectionTime]) and safety under a [CommonNATIdle] timer
// ([Profile.NATSafe]). The output depends only on the profiles, so
// documentation can embed it and tests can compare it byte for byte.
func Table(ps ...Profile) string {
	var b strings.Builder
	writeRow(&b, tableHeader)
	sep := make([]string, len(tableHeader))
	for i := range sep {
		sep[i] = "---"
	}
	writeRow(&b, sep)
	for _, p := range ps {
		writeRow(&b, p.tableRow())
	}
	return b.String()
}

func writeRow(b *strings.Builder, cells []string) {
	b.WriteString("| ")
	b.WriteString(strings.Join(cells, " | "))
	b.WriteString(" |\n")
}

// tableRow returns p's cells in the order of tableHeader.
func (p Profile) tableRow() []string {
	h := p.Heartbeat
	tcp := "off"
	if p.TCP.Enable {
		tcp = fmt.Sprintf("%s / %s / %d", formatDuration(p.TCP.Idle), formatDuration(p.TCP.Interval), p.TCP.Count)
	}
	natSafe := "no"
	if p.NATSafe(CommonNATIdle) {
		natSafe = "yes"
	}
	adaptive := "no"
	if h.Adaptive {
		adaptive = "yes"
	}
	return []string{
		p.Name,
		fmt.Sprintf("%s × %d + %s", formatDuration(h.Interval), h.Misses, formatDuration(h.Grace)),
		formatDuration(p.DetectionTime()),
		formatDuration(p.RTTDetectionTime(0, 0)),
		strconv.FormatFloat(math.Round(p.HeartbeatsPerHour()*10)/10, 'f', -1, 64),
		formatDuration(p.Server.Time) + " / " + formatDuration(p.Server.Timeout),
		formatDuration(p.Enforcement.MinTime),
		formatDuration(p.Client.Time) + " / " + formatDuration(p.Client.Timeout),
		tcp,
		natSafe,
		adaptive,
	}
}

// formatDuration is time.Duration.String without trailing zero units:
// "1m" rather than "1m0s", "2h" rather than "2h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
