package console_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tetherhq/tether/auth"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/console"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// node is a tether server with the console in front of it.
type node struct {
	srv     *server.Server
	addr    string
	h       *console.Handler
	drained atomic.Int32
}

func newNode(t *testing.T, guard *auth.TokenStore, loopbackOnly bool) *node {
	t.Helper()
	n := &node{}
	n.srv, n.addr = tethertest.Serve(t, server.WithServerID("n1"))
	n.h = console.New(console.Config{
		Server: n.srv, Broker: "memory", Profile: profile.Default(),
		Ready: n.srv.Ready, Drain: func() { n.drained.Add(1) },
		Guard: guard, LoopbackOnly: loopbackOnly,
	})
	return n
}

// open opens a session for clientID; it ends at cleanup.
func (n *node) open(t *testing.T, clientID string) string {
	t.Helper()
	cc, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		_ = cc.Close()
	})
	st, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hello := &tetherv1.Hello{ClientId: clientID, HeartbeatInterval: durationpb.New(time.Minute)}
	if err := st.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		t.Fatal(err)
	}
	f, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return f.GetWelcome().GetSessionId()
}

// request is one call to the console.
type request struct {
	method, path, body string
	header             map[string]string
	remote, host       string // default: loopback
}

func (n *node) do(t *testing.T, r request) (int, string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(cmpOr(r.method, http.MethodGet), "http://127.0.0.1:9090"+r.path, strings.NewReader(r.body))
	req.RemoteAddr = cmpOr(r.remote, "127.0.0.1:40000")
	req.Host = cmpOr(r.host, "127.0.0.1:9090")
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	n.h.ServeHTTP(w, req)
	body, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(body), w.Result().Header
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// overview returns the overview as the given bearer token sees it.
func (n *node) overview(t *testing.T, token string) map[string]any {
	t.Helper()
	code, body, _ := n.do(t, request{path: "/console/api/overview", header: bearer(token)})
	if code != http.StatusOK {
		t.Fatalf("overview: %d %s", code, body)
	}
	var o map[string]any
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		t.Fatal(err)
	}
	return o
}

func bearer(token string) map[string]string {
	if token == "" {
		return map[string]string{}
	}
	return map[string]string{"Authorization": "Bearer " + token}
}

// The page and its files are embedded and served with a CSP that allows
// only them.
func TestAssets(t *testing.T) {
	t.Parallel()
	n := newNode(t, nil, true)
	for path, want := range map[string]string{
		"/console/":            "text/html",
		"/console/console.js":  "text/javascript",
		"/console/console.css": "text/css",
	} {
		code, body, h := n.do(t, request{path: path})
		if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), want) || len(body) < 100 {
			t.Errorf("GET %s: %d %q, %d bytes; want 200 %s", path, code, h.Get("Content-Type"), len(body), want)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
	if code, _, _ := n.do(t, request{path: "/console/nope.js"}); code != http.StatusNotFound {
		t.Errorf("a missing file: %d; want 404", code)
	}
}

// Without TLS and auth the console answers only loopback clients that
// name a loopback host (a DNS rebinding page names its own).
func TestLoopbackOnly(t *testing.T) {
	t.Parallel()
	n := newNode(t, nil, true)
	for _, r := range []request{
		{path: "/console/", host: "evil.example:9090"},
		{path: "/console/api/overview", host: "evil.example"},
		{path: "/console/api/overview", remote: "192.0.2.7:5000"},
	} {
		if code, body, _ := n.do(t, r); code != http.StatusForbidden || !strings.Contains(body, "loopback") {
			t.Errorf("%+v: %d %s; want 403 naming loopback", r, code, body)
		}
	}
	for _, host := range []string{"localhost:9090", "[::1]:9090", "127.0.0.1"} {
		if code, body, _ := n.do(t, request{path: "/console/api/overview", host: host}); code != http.StatusOK {
			t.Errorf("host %s: %d %s; want 200", host, code, body)
		}
	}
	if code, _, _ := newNode(t, nil, false).do(t, request{path: "/console/api/overview", host: "tetherd.example", remote: "192.0.2.7:5000"}); code != http.StatusOK {
		t.Errorf("LoopbackOnly false: %d; want 200", code)
	}
}

// writeTokens writes a tokens file with an admin, a reader and a device,
// whose tokens are their names.
func writeTokens(t *testing.T) *auth.TokenStore {
	t.Helper()
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	doc := fmt.Sprintf(`{"principals":[
{"name":"root","token_sha256":%q,"admin":true},
{"name":"reader","token_sha256":%q,"admin_read":true},
{"name":"device","token_sha256":%q,"connect":true}]}`, hash("root-token"), hash("reader-token"), hash("device-token"))
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := auth.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// With a guard, the data needs admin or admin_read, and acting needs admin:
// a reader's page offers no buttons, and its calls are refused.
func TestAuth(t *testing.T) {
	t.Parallel()
	n := newNode(t, writeTokens(t), false)
	id := n.open(t, "dev1")
	for _, tc := range []struct {
		token string
		code  int
	}{{"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {"device-token", http.StatusForbidden}} {
		for _, path := range []string{"/console/api/overview", "/console/api/sessions", "/console/api/sessions/" + id} {
			if code, body, _ := n.do(t, request{path: path, header: bearer(tc.token)}); code != tc.code {
				t.Errorf("GET %s with %q: %d %s; want %d", path, tc.token, code, body, tc.code)
			}
		}
	}
	if code, _, _ := n.do(t, request{path: "/console/"}); code != http.StatusOK {
		t.Errorf("the page itself (its sign-in form) needs no token: %d", code)
	}
	ro := n.overview(t, "reader-token")
	if ro["canAct"] != false || ro["canDrain"] != false || ro["principal"] != "reader" {
		t.Errorf("reader's overview: %v; want no actions", ro)
	}
	h := bearer("reader-token")
	h["X-CSRF-Token"] = ro["csrf"].(string)
	code, body, _ := n.do(t, request{method: http.MethodPost, path: "/console/api/sessions/" + id + "/kick", body: `{"reason":"x"}`, header: h})
	if code != http.StatusForbidden || !strings.Contains(body, "admin permission") {
		t.Errorf("reader's kick: %d %s; want 403", code, body)
	}
	admin := n.overview(t, "root-token")
	if admin["canAct"] != true || admin["canDrain"] != true {
		t.Errorf("admin's overview: %v; want actions", admin)
	}
	h = bearer("root-token")
	h["X-CSRF-Token"] = admin["csrf"].(string)
	if code, body, _ := n.do(t, request{method: http.MethodPost, path: "/console/api/sessions/" + id + "/kick", body: `{"reason":"x"}`, header: h}); code != http.StatusOK {
		t.Errorf("admin's kick: %d %s; want 200", code, body)
	}
}

// Actions need the CSRF token of the overview and a same-origin request.
func TestCSRF(t *testing.T) {
	t.Parallel()
	n := newNode(t, nil, true)
	id := n.open(t, "dev1")
	csrf := n.overview(t, "")["csrf"].(string)
	kick := "/console/api/sessions/" + id + "/kick"
	for _, h := range []map[string]string{
		{},
		{"X-CSRF-Token": "forged"},
		{"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
		{"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"},
	} {
		if code, body, _ := n.do(t, request{method: http.MethodPost, path: kick, body: `{}`, header: h}); code != http.StatusForbidden {
			t.Errorf("kick with %v: %d %s; want 403", h, code, body)
		}
	}
	if _, err := n.srv.InspectSession(id); err != nil {
		t.Fatalf("a refused kick ended the session: %v", err)
	}
	ok := map[string]string{"X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:9090", "Sec-Fetch-Site": "same-origin"}
	if code, body, _ := n.do(t, request{method: http.MethodPost, path: kick, body: `{"reason":"test"}`, header: ok}); code != http.StatusOK {
		t.Fatalf("kick: %d %s; want 200", code, body)
	}
	if code, body, _ := n.do(t, request{method: http.MethodPost, path: kick, body: `{}`, header: ok}); code != http.StatusNotFound || !strings.Contains(body, "no session") {
		t.Errorf("kick again: %d %s; want 404", code, body)
	}
	if code, body, _ := n.do(t, request{method: http.MethodPost, path: "/console/api/sessions/x/kick", body: `not json`, header: ok}); code != http.StatusBadRequest {
		t.Errorf("kick with a bad body: %d %s; want 400", code, body)
	}
}

// The sessions endpoint filters, orders and pages on the server, and says
// what is wrong with a bad query.
func TestSessionsAPI(t *testing.T) {
	t.Parallel()
	n := newNode(t, nil, true)
	for i := range 5 {
		n.open(t, fmt.Sprintf("dev-%d", i))
	}
	code, body, _ := n.do(t, request{path: "/console/api/sessions?client=dev-&sort=age&desc=1&offset=1&limit=2&state=connected"})
	var page struct {
		Sessions []struct {
			ClientID string   `json:"clientId"`
			Topics   []string `json:"topics"`
		} `json:"sessions"`
		Matched, Total, Offset int
	}
	if err := json.Unmarshal([]byte(body), &page); code != http.StatusOK || err != nil {
		t.Fatalf("sessions: %d %s %v", code, body, err)
	}
	if page.Matched != 5 || page.Total != 5 || page.Offset != 1 || len(page.Sessions) != 2 || page.Sessions[0].ClientID != "dev-1" || page.Sessions[0].Topics == nil {
		t.Fatalf("page = %+v; want dev-1 and dev-2 of 5, topics an empty list", page)
	}
	for q, want := range map[string]string{
		"sort=size":   "sort must be",
		"state=gone":  "state must be",
		"offset=-1":   "offset must be",
		"limit=lots":  "limit must be",
		"state=UNSPE": "state must be",
	} {
		if code, body, _ := n.do(t, request{path: "/console/api/sessions?" + q}); code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("?%s: %d %s; want 400 %q", q, code, body, want)
		}
	}
	if code, body, _ := n.do(t, request{path: "/console/api/sessions/nope"}); code != http.StatusNotFound {
		t.Errorf("unknown session: %d %s; want 404", code, body)
	}
}

// Drain calls the node's drain once; a node that offers none says so.
func TestDrain(t *testing.T) {
	t.Parallel()
	n := newNode(t, nil, true)
	h := map[string]string{"X-CSRF-Token": n.overview(t, "")["csrf"].(string)}
	if code, body, _ := n.do(t, request{method: http.MethodPost, path: "/console/api/drain", header: h}); code != http.StatusAccepted {
		t.Fatalf("drain: %d %s; want 202", code, body)
	}
	if got := n.drained.Load(); got != 1 {
		t.Fatalf("drain ran %d times; want 1", got)
	}
	none := &node{srv: n.srv, h: console.New(console.Config{Server: n.srv})}
	o := none.overview(t, "")
	if o["canDrain"] != false {
		t.Errorf("overview without a Drain func: canDrain %v; want false", o["canDrain"])
	}
	h = map[string]string{"X-CSRF-Token": o["csrf"].(string)}
	if code, body, _ := none.do(t, request{method: http.MethodPost, path: "/console/api/drain", header: h}); code != http.StatusNotFound {
		t.Fatalf("drain without a Drain func: %d %s; want 404", code, body)
	}
}

// A session its client suspended is its own state: in the overview's
// counts and in the sessions list, filtered by state=suspended.
func TestSuspendedSessions(t *testing.T) {
	t.Parallel()
	n := newNode(t, nil, true)
	n.open(t, "awake")
	cc, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	st, err := tetherv1.NewTetherServiceClient(cc).Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: &tetherv1.Hello{ClientId: "asleep"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Suspend{Suspend: &tetherv1.Suspend{}}}); err != nil {
		t.Fatal(err)
	}
	for { // the server ends the stream once the session is suspended
		if _, err := st.Recv(); err != nil {
			break
		}
	}
	sessions := n.overview(t, "")["sessions"].(map[string]any)
	if sessions["suspended"] != 1.0 || sessions["connected"] != 1.0 {
		t.Fatalf("overview sessions %v; want 1 suspended, 1 connected", sessions)
	}
	code, body, _ := n.do(t, request{path: "/console/api/sessions?state=suspended"})
	if code != http.StatusOK || !strings.Contains(body, `"clientId":"asleep"`) || strings.Contains(body, `"clientId":"awake"`) || !strings.Contains(body, `"state":"suspended"`) {
		t.Fatalf("state=suspended: %d %s", code, body)
	}
}
