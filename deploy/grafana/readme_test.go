package grafana

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readmeSeries returns the series the README's Metrics table lists: the
// backquoted names in its first column.
func readmeSeries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Metrics\n")
	if !ok {
		t.Fatal(`README.md has no "## Metrics" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	name := regexp.MustCompile("`([a-z_]+)`")
	var names []string
	for line := range strings.Lines(section) {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			names = append(names, m[1])
		}
	}
	slices.Sort(names)
	return names
}

// TestREADMEMetricsTable keeps the README's Metrics table and what
// tetherd's /metrics serves (the families of server.New, and the gRPC
// server metrics of interceptors/metrics) in step.
func TestREADMEMetricsTable(t *testing.T) {
	_, tether := exported(t)
	served := slices.Concat(tether, slices.Collect(func(yield func(string) bool) {
		for name := range grpcServerSeries {
			if !yield(name) {
				return
			}
		}
	}))
	listed := readmeSeries(t)
	for _, name := range served {
		if !slices.Contains(listed, name) {
			t.Errorf("%s is served on /metrics but missing from the README's Metrics table", name)
		}
	}
	for _, name := range listed {
		if !slices.Contains(served, name) {
			t.Errorf("the README's Metrics table lists %s, which /metrics does not serve", name)
		}
	}
}
