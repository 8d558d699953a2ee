package chaos

import (
	"fmt"
	"io"
	"strings"
)

// Markdown writes results as a Markdown table: per case, each direction's
// sent, lost (of them reported to nobody), duplicated and reordered
// messages, the reconnects with their median and longest time, and
// whether the broker's promise held.
func Markdown(w io.Writer, results []Result) {
	fmt.Fprintln(w, "| fault | broker | s→c sent | s→c lost (unreported) | s→c dup | s→c reordered | c→s sent | c→s lost (unreported) | c→s dup | c→s reordered | reconnects | reconnect p50 / max | promise |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, r := range results {
		verdict := "kept"
		if len(r.Violations()) > 0 {
			verdict = "**broken**"
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %d | %s | %s | %s | %d | %.1f s / %.1f s | %s: %s |\n",
			r.Fault, r.Broker,
			r.S2C.Sent, lost(r.S2C), bold(r.S2C.Duplicated), bold(r.S2C.Reordered),
			r.C2S.Sent, lost(r.C2S), bold(r.C2S.Duplicated), bold(r.C2S.Reordered),
			r.Reconnects, r.ReconnectP50, r.ReconnectMax, promise(r.Broker), verdict)
	}
}

// promise is Case.Promise by broker name.
func promise(broker string) string {
	if broker == Memory.String() {
		return "every loss reported"
	}
	return "0 lost, duplicated, reordered"
}

func lost(c Count) string {
	if c.Lost == 0 {
		return "0"
	}
	return fmt.Sprintf("**%d** (%d)", c.Lost, c.Unreported)
}

func bold(n int) string {
	if n == 0 {
		return "0"
	}
	return fmt.Sprintf("**%d**", n)
}

// String is a one-line summary of r, for logs.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: s2c %+v, c2s %+v, %d reconnects (p50 %.2fs, max %.2fs), placement %v, fault %.1fs, total %.1fs",
		r.Case, r.S2C, r.C2S, r.Reconnects, r.ReconnectP50, r.ReconnectMax, r.Placement, r.FaultSeconds, r.TotalSeconds)
	if len(r.Retries) > 0 {
		fmt.Fprintf(&b, ", retries %v", r.Retries)
	}
	if len(r.Fresh) > 0 {
		fmt.Fprintf(&b, ", back not resumed %v", r.Fresh)
	}
	if len(r.Closed) > 0 {
		fmt.Fprintf(&b, ", closed %v", r.Closed)
	}
	return b.String()
}
