package report

import (
	"fmt"
	"io"
	"slices"
)

// Peer is the system users would pick instead of tether; when both run,
// tables get a "tether ÷ Peer" column besides the ratios to the raw twin.
const (
	Peer   = "centrifuge"
	Tether = "tether"
)

// peerColumn reports whether the table gets the tether ÷ Peer column.
func peerColumn(systems []string) bool {
	return slices.Contains(systems, Peer) && slices.Contains(systems, Tether)
}

// peerHeader returns the column's header cell and alignment.
func peerHeader(systems []string) (header, align string) {
	if !peerColumn(systems) {
		return "", ""
	}
	return fmt.Sprintf(" %s ÷ %s |", Tether, Peer), "--:|"
}

// peerCell writes r's tether ÷ Peer ratio.
func peerCell(w io.Writer, r Row, systems []string) {
	if !peerColumn(systems) {
		return
	}
	t, ok1 := r.Systems[Tether]
	p, ok2 := r.Systems[Peer]
	if !ok1 || !ok2 || p.Median == 0 {
		fmt.Fprint(w, " – |")
		return
	}
	fmt.Fprintf(w, " %.2f× |", t.Median/p.Median)
}
