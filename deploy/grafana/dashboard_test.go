package grafana

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	natsbroker "github.com/tetherhq/tether/broker/nats"
	grpcmetrics "github.com/tetherhq/tether/interceptors/metrics"
	"github.com/tetherhq/tether/server"
)

const dashboardFile = "tether.json"

// dsUID is how every panel and target names its data source: the
// DS_PROMETHEUS import input, which is also a datasource variable so that a
// provisioned (not imported) copy works too.
const dsUID = "${DS_PROMETHEUS}"

// wantRows are the dashboard's rows, in order.
var wantRows = []string{"Sessions", "Traffic", "Liveness", "Pressure", "gRPC", "Process"}

// kind is what a series family is, as far as querying it goes: a histogram
// is queried through its _bucket, _sum and _count series, a summary through
// its bare name (quantiles), _sum and _count, anything else by its name.
type kind string

const (
	counter   kind = "counter"
	gauge     kind = "gauge"
	histogram kind = "histogram"
	summary   kind = "summary"
	other     kind = "other"
)

// grpcServerSeries are the server metrics of
// github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus
// (NewServerMetrics, v1.x, no namespace or subsystem), as
// interceptors/metrics records them. Labels: grpc_type, grpc_service,
// grpc_method, and grpc_code on grpc_server_handled_total.
// TestGRPCSeriesList compares the list with interceptors/metrics.New.
var grpcServerSeries = map[string]kind{
	"grpc_server_started_total":      counter,
	"grpc_server_handled_total":      counter,
	"grpc_server_msg_received_total": counter,
	"grpc_server_msg_sent_total":     counter,
	// providers/prometheus exports it with WithServerHandlingTimeHistogram,
	// which interceptors/metrics always sets.
	"grpc_server_handling_seconds": histogram,
}

// grpcLabels are the labels the dashboard groups and filters the gRPC
// series by.
var grpcLabels = map[string][]string{
	"grpc_server_started_total":      {"grpc_type", "grpc_service", "grpc_method"},
	"grpc_server_handled_total":      {"grpc_type", "grpc_service", "grpc_method", "grpc_code"},
	"grpc_server_msg_received_total": {"grpc_type", "grpc_service", "grpc_method"},
	"grpc_server_msg_sent_total":     {"grpc_type", "grpc_service", "grpc_method"},
	"grpc_server_handling_seconds":   {"grpc_type", "grpc_service", "grpc_method"},
}

// checkedPrefixes are the series prefixes the test knows the origin of.
var checkedPrefixes = []string{"tether_", "grpc_server_", "go_", "process_"}

// --- the dashboard model, as much of it as the test checks ---

type dashboard struct {
	Inputs        []input `json:"__inputs"`
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type input struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	PluginID string `json:"pluginId"`
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *datasourceRef `json:"datasource"`
	Targets     []target       `json:"targets"`
	Panels      []panel        `json:"panels"` // a collapsed row's panels
}

type target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasourceRef  `json:"datasource"`
}

// queries returns the PromQL in a query variable: its definition and its
// query, which Grafana stores as a string or as {"query": "..."}.
func (v variable) queries() []string {
	var out []string
	if v.Definition != "" {
		out = append(out, v.Definition)
	}
	var s string
	var obj struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &s) == nil && s != "" {
		out = append(out, s)
	} else if json.Unmarshal(v.Query, &obj) == nil && obj.Query != "" {
		out = append(out, obj.Query)
	}
	return out
}

// graphPanel is a non-row panel with the row it sits in.
type graphPanel struct {
	panel
	row string
}

// load reads and parses the dashboard. It returns the raw top-level object
// too, for the field checks.
func load(t *testing.T) (*dashboard, map[string]json.RawMessage) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		var v any
		t.Fatalf("%s is not valid JSON: %v", dashboardFile, json.Unmarshal(b, &v))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%s: the top level is not an object: %v", dashboardFile, err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d, raw
}

// graphs returns the dashboard's non-row panels in order, each with its row
// (a collapsed row's panels included).
func (d *dashboard) graphs() []graphPanel {
	var out []graphPanel
	row := ""
	for _, p := range d.Panels {
		if p.Type == "row" {
			row = p.Title
			for _, c := range p.Panels {
				out = append(out, graphPanel{c, row})
			}
			continue
		}
		out = append(out, graphPanel{p, row})
	}
	return out
}

// --- extracting series names from PromQL ---

var (
	// stringLit matches PromQL string literals, whose contents are label
	// values, not series: reason="go_away" must not count as go_away.
	stringLit = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	comment   = regexp.MustCompile(`#[^\n]*`)
	// seriesName matches an identifier with one of checkedPrefixes that
	// starts a token: tether_go_aways_total is one name, not go_aways_total.
	// ($ excludes Grafana variables such as $go_x.)
	seriesName = regexp.MustCompile(`(?:^|[^A-Za-z0-9_:$])((?:tether|grpc_server|go|process)_[A-Za-z0-9_:]*)`)
)

// seriesIn returns the series names with checkedPrefixes that expr
// queries, in order of appearance, without duplicates. Label names with
// those prefixes would be reported too; the dashboard has none.
func seriesIn(expr string) []string {
	expr = stringLit.ReplaceAllString(expr, `""`)
	expr = comment.ReplaceAllString(expr, "")
	var out []string
	for _, m := range seriesName.FindAllStringSubmatch(expr, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// --- what really gets exported ---

// family is an exported series family and where it comes from.
type family struct {
	kind   kind
	source string
}

// known maps family names to families.
type known map[string]family

// resolve maps a queried series name to the family it belongs to: the name
// itself, or a histogram's (or summary's) family for _bucket, _sum and
// _count. A histogram's bare name is not a series and is an error.
func (k known) resolve(name string) (string, error) {
	if f, ok := k[name]; ok {
		if f.kind == histogram {
			return "", fmt.Errorf("%s is a histogram (%s): query %[1]s_bucket, %[1]s_sum or %[1]s_count", name, f.source)
		}
		return name, nil
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := k[base]
		if ok && (f.kind == histogram || f.kind == summary && suffix != "_bucket") {
			return base, nil
		}
	}
	return "", fmt.Errorf("%s: no such series is exported", name)
}

// recorder is a Registerer that remembers what is registered through it.
type recorder struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var fqName = regexp.MustCompile(`^Desc\{fqName: "([^"]*)"`)

// exported returns every family a tetherd-like registry exports: the Go and
// process collectors, as cmd/tetherd registers them, the tether_ families of
// a real server.New, and grpcServerSeries. It also returns the tether_
// family names alone.
//
// Gathering alone is not enough for the server: a vector with no children
// yet (tether_resumes_total before any resume) gathers nothing, so the
// server's collectors are also asked to describe themselves.
func exported(t *testing.T) (known, []string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rec := &recorder{Registerer: reg}
	// tetherd registers the NATS broker's own series, with --broker nats,
	// through the same registerer as the server's.
	if err := rec.Register(&natsbroker.Broker{}); err != nil {
		t.Fatalf("registering the NATS broker's collector: %v", err)
	}
	srv, err := server.New(server.WithRegisterer(rec))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	if len(rec.collectors) == 0 {
		t.Fatal("server.New(server.WithRegisterer(r)) registered nothing with r")
	}

	mfs, err := reg.Gather()
	if err != nil {
		// A collector that cannot read its source (say /proc in a
		// sandbox) reports an error but the rest is still gathered.
		t.Logf("gather: %v", err)
	}
	k := known{}
	for _, mf := range mfs {
		name := mf.GetName()
		kd := other
		switch mf.GetType().String() {
		case "COUNTER":
			kd = counter
		case "GAUGE":
			kd = gauge
		case "HISTOGRAM", "GAUGE_HISTOGRAM":
			kd = histogram
		case "SUMMARY":
			kd = summary
		}
		source := "the Go and process collectors"
		if strings.HasPrefix(name, "tether_") {
			source = "server.New"
		}
		k[name] = family{kd, source}
	}

	var tether []string
	for _, c := range rec.collectors {
		ch := make(chan *prometheus.Desc)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if err := d.Err(); err != nil {
				t.Errorf("server metric %v: %v", d, err)
				continue
			}
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name from %v: has prometheus.Desc.String changed?", d)
			}
			name := m[1]
			if !strings.HasPrefix(name, "tether_") {
				t.Errorf("server.New registers %s, which lacks the tether_ prefix", name)
			}
			tether = append(tether, name)
			if _, ok := k[name]; ok {
				continue
			}
			kd := other // not gathered: a vector without children
			switch c.(type) {
			case *prometheus.CounterVec:
				kd = counter
			case *prometheus.GaugeVec:
				kd = gauge
			case *prometheus.HistogramVec:
				kd = histogram
			case *prometheus.SummaryVec:
				kd = summary
			}
			k[name] = family{kd, "server.New"}
		}
	}
	for name := range k {
		if strings.HasPrefix(name, "tether_") && !slices.Contains(tether, name) {
			t.Errorf("gathered %s, but server.New did not register it through WithRegisterer", name)
		}
	}
	for name, kd := range grpcServerSeries {
		k[name] = family{kd, "go-grpc-middleware providers/prometheus"}
	}
	slices.Sort(tether)
	return k, slices.Compact(tether)
}

// --- the tests ---

func TestDashboardIsWellFormed(t *testing.T) {
	d, raw := load(t)
	for _, f := range []string{"__inputs", "__requires", "annotations", "editable", "panels",
		"schemaVersion", "tags", "templating", "time", "title", "uid"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("no top-level %q", f)
		}
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("title %q, uid %q: both must be set", d.Title, d.UID)
	}
	if d.SchemaVersion < 38 { // Grafana 10.0
		t.Errorf("schemaVersion %d: want a Grafana 10+ model (38 or later)", d.SchemaVersion)
	}
	if !slices.ContainsFunc(d.Inputs, func(in input) bool {
		return in.Name == "DS_PROMETHEUS" && in.Type == "datasource" && in.PluginID == "prometheus"
	}) {
		t.Errorf("__inputs has no DS_PROMETHEUS prometheus datasource input: %+v", d.Inputs)
	}

	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v, ok := vars["DS_PROMETHEUS"]; !ok || v.Type != "datasource" || string(v.Query) != `"prometheus"` {
		t.Errorf("templating: want a DS_PROMETHEUS datasource variable for prometheus, have %+v", v)
	}
	if v, ok := vars["instance"]; !ok || v.Type != "query" || len(v.queries()) == 0 {
		t.Errorf("templating: want an instance query variable, have %+v", v)
	} else if v.Datasource == nil || v.Datasource.UID != dsUID {
		t.Errorf("templating: instance queries %+v, want uid %s", v.Datasource, dsUID)
	}

	// Rows: the wanted ones, in order, none empty, nothing outside a row.
	var rows []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			rows = append(rows, p.Title)
		}
	}
	if !slices.Equal(rows, wantRows) {
		t.Errorf("rows %q, want %q", rows, wantRows)
	}
	perRow := map[string]int{}
	ids := map[int]string{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			if prev, dup := ids[p.ID]; dup {
				t.Errorf("row %q: id %d already used by %q", p.Title, p.ID, prev)
			}
			ids[p.ID] = p.Title
		}
	}
	for _, p := range d.graphs() {
		name := fmt.Sprintf("panel %q (row %q)", p.Title, p.row)
		if p.row == "" {
			t.Errorf("%s is not in a row", name)
		}
		perRow[p.row]++
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("%s: id %d is zero or already used by %q", name, p.ID, prev)
		}
		ids[p.ID] = p.Title
		if p.Title == "" {
			t.Errorf("%s has no title", name)
		}
		if len(strings.Fields(p.Description)) < 8 {
			t.Errorf("%s: the description must say what to look for, have %q", name, p.Description)
		}
		if p.Datasource == nil || p.Datasource.UID != dsUID {
			t.Errorf("%s: datasource %+v, want uid %s", name, p.Datasource, dsUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s has no queries", name)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: refId %q is empty or repeated", name, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != dsUID {
				t.Errorf("%s, query %s: datasource %+v, want uid %s", name, tg.RefID, tg.Datasource, dsUID)
			}
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("%s, query %s does not filter on instance=~\"$instance\": %s", name, tg.RefID, tg.Expr)
			}
			if len(seriesIn(tg.Expr)) == 0 {
				t.Errorf("%s, query %s names no %v series: %q", name, tg.RefID, checkedPrefixes, tg.Expr)
			}
		}
	}
	for _, r := range wantRows {
		if perRow[r] == 0 {
			t.Errorf("row %q has no panels", r)
		}
	}
}

func TestDashboardSeriesExist(t *testing.T) {
	d, _ := load(t)
	k, _ := exported(t)
	_, haveProcess := k["process_resident_memory_bytes"]
	if !haveProcess {
		t.Log("the process collector exports nothing on this platform: process_ series are not checked")
	}

	check := func(where, expr string) {
		for _, name := range seriesIn(expr) {
			if strings.HasPrefix(name, "process_") && !haveProcess {
				continue
			}
			if _, err := k.resolve(name); err != nil {
				t.Errorf("%s: %v\n\t%s", where, err, expr)
			}
		}
	}
	for _, p := range d.graphs() {
		for _, tg := range p.Targets {
			check(fmt.Sprintf("panel %q query %s", p.Title, tg.RefID), tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		for _, q := range v.queries() {
			check(fmt.Sprintf("variable %q", v.Name), q)
		}
	}
}

// TestEverySeriesIsGraphed keeps the dashboard complete: a tether_ series
// added to the server (or a gRPC series listed above) must get a panel.
func TestEverySeriesIsGraphed(t *testing.T) {
	d, _ := load(t)
	k, tether := exported(t)
	graphed := map[string][]string{}
	for _, p := range d.graphs() {
		for _, tg := range p.Targets {
			for _, name := range seriesIn(tg.Expr) {
				if f, err := k.resolve(name); err == nil {
					graphed[f] = append(graphed[f], p.Title)
				}
			}
		}
	}
	want := slices.Concat(tether, slices.Sorted(func(yield func(string) bool) {
		for name := range grpcServerSeries {
			if !yield(name) {
				return
			}
		}
	}))
	for _, name := range want {
		if len(graphed[name]) == 0 {
			t.Errorf("%s (%s) is exported but no panel graphs it: add it to %s", name, k[name].source, dashboardFile)
		}
	}
	// The server registers the series in the README's Metrics table; a
	// handful is a sign that the Desc parsing above broke.
	if len(tether) < 10 {
		t.Errorf("server.New registered only %d tether_ families: %q", len(tether), tether)
	}
}

// TestGRPCSeriesList keeps grpcServerSeries true to what
// interceptors/metrics really exports: the same names, kinds and labels.
func TestGRPCSeriesList(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := grpcmetrics.New(reg)
	if err != nil {
		t.Fatalf("metrics.New: %v", err)
	}
	gs := grpc.NewServer() // never served: it only lends its methods
	healthpb.RegisterHealthServer(gs, health.NewServer())
	m.InitializeMetrics(gs) // creates every series at zero
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]kind{}
	for _, mf := range mfs {
		kd := other
		switch mf.GetType().String() {
		case "COUNTER":
			kd = counter
		case "HISTOGRAM":
			kd = histogram
		}
		got[mf.GetName()] = kd
		want, ok := grpcLabels[mf.GetName()]
		if !ok || len(mf.GetMetric()) == 0 {
			continue
		}
		var labels []string
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		for _, l := range want {
			if !slices.Contains(labels, l) {
				t.Errorf("%s has labels %q, no %s", mf.GetName(), labels, l)
			}
		}
	}
	for name, kd := range grpcServerSeries {
		if got[name] != kd {
			t.Errorf("grpcServerSeries says %s is a %s; interceptors/metrics exports %q", name, kd, got[name])
		}
	}
	for name := range got {
		if _, ok := grpcServerSeries[name]; !ok {
			t.Errorf("interceptors/metrics exports %s, which grpcServerSeries lacks", name)
		}
	}
}

func TestSeriesIn(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (reason) (rate(tether_go_aways_total{reason="go_away"}[5m]))`, []string{"tether_go_aways_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(tether_rtt_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`,
			[]string{"tether_rtt_seconds_bucket"}},
		{"sum(rate(tether_rtt_seconds_sum[1m]))\n/\nsum(rate(tether_rtt_seconds_count[1m]))",
			[]string{"tether_rtt_seconds_sum", "tether_rtt_seconds_count"}},
		{`go_goroutines+process_resident_memory_bytes`, []string{"go_goroutines", "process_resident_memory_bytes"}},
		{`tether_streams - tether_streams`, []string{"tether_streams"}},
		{`label_values(tether_sessions, instance)`, []string{"tether_sessions"}},
		{`rate(grpc_server_handled_total{grpc_code!='OK', grpc_type=` + "`unary`" + `}[1m])`, []string{"grpc_server_handled_total"}},
		{"up # tether_sessions", nil},
		{`mytether_sessions + $go_x + grpc_client_started_total`, nil},
	} {
		if got := seriesIn(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("seriesIn(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestResolve(t *testing.T) {
	k, _ := exported(t)
	for _, tc := range []struct {
		name, want string // want "" for an error
	}{
		{"tether_sessions", "tether_sessions"},
		{"tether_resumes_total", "tether_resumes_total"}, // a vector with no children yet
		{"tether_rtt_seconds_bucket", "tether_rtt_seconds"},
		{"tether_rtt_seconds_count", "tether_rtt_seconds"},
		{"tether_rtt_seconds", ""}, // a histogram's bare name is no series
		{"tether_sessions_count", ""},
		{"tether_no_such_thing_total", ""},
		{"grpc_server_handling_seconds_sum", "grpc_server_handling_seconds"},
		{"grpc_server_handled_total", "grpc_server_handled_total"},
		{"grpc_server_handled", ""},
		{"go_goroutines", "go_goroutines"},
		{"go_gc_duration_seconds", "go_gc_duration_seconds"}, // a summary
		{"go_gc_duration_seconds_bucket", ""},
	} {
		got, err := k.resolve(tc.name)
		if tc.want == "" {
			if err == nil {
				t.Errorf("resolve(%s) = %s, want an error", tc.name, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("resolve(%s) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
