package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tetherhq/tether/auth"
	"github.com/tetherhq/tether/client"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// requireBrowserEnv, when set (.ci/run sets it), makes a missing Chromium
// a failure rather than a skip.
const requireBrowserEnv = "TETHER_REQUIRE_BROWSER"

// screenshotsEnv names the directory the browser test writes its
// screenshots to, when set (docs/console holds the README's).
const screenshotsEnv = "TETHER_CONSOLE_SCREENSHOTS"

// hostile is a client id and a topic that would run script if the console
// put them into the page as HTML.
const (
	hostileID    = `<b id="pwned">x</b><script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">`
	hostileTopic = `alerts.<script>window.__pwned=1</script>`
)

// browser starts headless Chromium, with the flags that work in a
// container, and returns a context to drive a tab in. It skips the test
// when Chromium is not installed.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := fmt.Sprintf("no Chromium at %s (%v): install it with 'apt-get install -y chromium' (.ci/run does)", chromiumPath, err)
		if os.Getenv(requireBrowserEnv) != "" {
			t.Fatal(msg + "; " + requireBrowserEnv + " is set, so the test may not skip")
		}
		t.Skip(msg)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// browse runs browser actions within waitLong.
func browse(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitLong)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// poll waits until the JavaScript expression is true, within limit. A
// page that reloads meanwhile (its script context is gone) is polled again.
func poll(t *testing.T, ctx context.Context, what, expr string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(0)))
		switch {
		case err == nil:
			return time.Since(start)
		case ctx.Err() != nil:
			t.Fatalf("%s: not within %v: %v", what, limit, err)
		}
	}
}

// screenshot captures the window (the whole page when full is set) and
// writes it to $TETHER_CONSOLE_SCREENSHOTS when that is set.
func screenshot(t *testing.T, ctx context.Context, name string, full bool) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, waitLong)
	defer cancel()
	shot := chromedp.CaptureScreenshot()
	if full {
		shot = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(sctx, shot)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if len(png) < 1000 {
		t.Fatalf("screenshot %s: %d bytes", name, len(png))
	}
	if dir := os.Getenv(screenshotsEnv); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sdkSession opens a client SDK session that heartbeats every second and
// closes it at cleanup.
func sdkSession(t *testing.T, addr, clientID string, topics ...string) *client.Session {
	t.Helper()
	s, err := client.New(client.WithAddrs(addr), client.WithClientID(clientID), client.WithTopics(topics...),
		client.WithHeartbeat(time.Second), client.WithMetadata(map[string]string{"app": "console-test"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		_ = s.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("connecting %q: %v", clientID, err)
	}
	return s
}

// TestConsoleInBrowser drives the web console in headless Chromium against
// a real tetherd: a session shows within a second of connecting, hostile
// names show as text, the timeline shows the session's pings, kick ends
// it, and the table pages through 1,000 sessions.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	td := startTetherd(t, nil, "--profile", "datacenter", "--rate", "0", "--drain-window", "2s", "--drain-rate", "2000")
	base := "http://" + td.adminAddr + "/console/"
	browse(t, ctx, "opening the console", chromedp.Navigate(base))
	poll(t, ctx, "the overview", `document.querySelector("#ready")?.textContent === "ready"`, waitLong)
	poll(t, ctx, "the empty table", `document.querySelector("#range")?.textContent === "no sessions"`, waitLong)

	// An SDK session shows within a second of connecting, its hostile
	// names as text.
	evil := sdkSession(t, td.grpcAddr, hostileID, hostileTopic, "news")
	took := poll(t, ctx, "the new session in the table", `[...document.querySelectorAll("#session-table td.client")].some(td => td.textContent === `+jsString(hostileID)+`)`, time.Second)
	t.Logf("the session showed %v after connecting", took.Round(time.Millisecond))
	checkEscaped(t, ctx)

	// Its page: the timeline shows its pings (the SDK drives the heartbeat).
	href := evaluate[string](t, ctx, `document.querySelector("#session-table td.client a").href`) // the table redraws: no click races it
	browse(t, ctx, "opening the session", chromedp.Navigate(href))
	poll(t, ctx, "the session page", `document.querySelector("#client-id")?.textContent === `+jsString(hostileID), waitLong)
	poll(t, ctx, "pings on the timeline", `document.querySelectorAll("#timeline .ev-ping").length >= 3`, waitLong)
	poll(t, ctx, "pings in the events", `[...document.querySelectorAll("#events td")].some(td => td.textContent === "client ping → pong")`, waitLong)
	checkEscaped(t, ctx)

	// Kick it from its page, after the confirmation.
	browse(t, ctx, "kicking", chromedp.Click(chromedp.CSS(`#session button.kick`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-reason`)),
		chromedp.SendKeys(chromedp.CSS(`#confirm-reason`), "console test"),
		chromedp.Click(chromedp.CSS(`#confirm-ok`)))
	waitClosed(t, evil)
	poll(t, ctx, "the ended session", `document.querySelector("#gone") !== null`, waitLong)
	browse(t, ctx, "back to the node", chromedp.Navigate(base+"#/"))
	poll(t, ctx, "the kicked session gone from the table", `document.querySelector("#range")?.textContent === "no sessions"`, waitLong)

	// A session the server pings: its RTT plot; it falls silent, misses
	// heartbeats, is cut off and resumes: a gap on the timeline.
	cc := dial(t, td.grpcAddr)
	first := openPonger(t, cc, "sensor-17", nil)
	browse(t, ctx, "opening sensor-17", chromedp.Navigate(base+"#/session/"+first.welcome.GetSessionId()))
	poll(t, ctx, "server pings on the timeline", `document.querySelectorAll("#timeline .ev-rtt").length >= 3`, waitLong)
	first.mute.Store(true)
	poll(t, ctx, "missed heartbeats", `document.querySelectorAll("#timeline .ev-heartbeat_missed").length >= 2`, waitLong)
	poll(t, ctx, "the detached session", `document.querySelector("#session .badge")?.textContent === "detached"`, waitLong)
	first.stop()
	sensor := openPonger(t, cc, "sensor-17", first.welcome)
	if !sensor.welcome.GetResumed() {
		t.Fatalf("sensor-17 did not resume: %v", sensor.welcome)
	}
	poll(t, ctx, "the resume", `document.querySelector("#resumes")?.textContent.includes("resumed")`, waitLong)
	poll(t, ctx, "the gap", `document.querySelector("#timeline rect.gap") !== null`, waitLong)
	poll(t, ctx, "pings after the resume", `document.querySelectorAll("#timeline .ev-rtt").length >= 7`, waitLong)
	poll(t, ctx, "the RTT plot", `document.querySelector("#rtt-plot polyline") !== null`, waitLong)
	screenshot(t, ctx, "session", true)

	// 1,000 more sessions, paged on the server; sorting and a filter.
	for i := range 1000 {
		connect(t, cc, fmt.Sprintf("device-%04d", i))
	}
	browse(t, ctx, "back to the node", chromedp.Navigate(base+"#/"))
	poll(t, ctx, "1,001 sessions in the table", `document.querySelector("#range")?.textContent === "1–50 of 1001"`, waitLong)
	poll(t, ctx, "1,001 sessions in the overview", `document.querySelector("#total")?.textContent === "1001"`, waitLong)
	screenshot(t, ctx, "overview", false)
	browse(t, ctx, "sorting by RTT", chromedp.Click(chromedp.CSS(`th[data-sort="rtt"]`)))
	poll(t, ctx, "sensor-17 first by RTT", `document.querySelector("#session-table td.client")?.textContent === "sensor-17"`, waitLong)
	browse(t, ctx, "next page", chromedp.Click(chromedp.CSS(`#next`)))
	poll(t, ctx, "the second page", `document.querySelector("#range")?.textContent === "51–100 of 1001"`, waitLong)
	browse(t, ctx, "filtering", chromedp.SendKeys(chromedp.CSS(`#filter-client`), "device-0999"))
	poll(t, ctx, "the filtered table", `document.querySelector("#range")?.textContent === "1–1 of 1 (of 1001)"`, waitLong)
	browse(t, ctx, "clearing the filter", chromedp.Evaluate[chromedp.Void](`(f => { f.value = ""; f.dispatchEvent(new Event("input")); })(document.querySelector("#filter-client"))`))
	poll(t, ctx, "the whole table", `document.querySelector("#range")?.textContent === "1–50 of 1001"`, waitLong)
	screenshot(t, ctx, "sessions", true)

	// Drain the node from the console: its progress, then tetherd exits.
	browse(t, ctx, "draining", chromedp.Click(chromedp.CSS(`#drain`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)),
		chromedp.Click(chromedp.CSS(`#confirm-ok`)))
	poll(t, ctx, "the drain's progress", `/^[0-9]+ streams left$/.test(document.querySelector("#drain-left")?.textContent)`, waitLong)
	poll(t, ctx, "the draining badge", `document.querySelector("#health")?.textContent === "draining"`, waitLong)
	if code := td.exit(); code != 0 {
		t.Fatalf("tetherd exited %d after a drain from the console; want 0", code)
	}
	td.waitLog(map[string]string{"msg": "shutting down", "cause": errConsoleDrain.Error()})
}

// ponger is a stub client that answers the server's pings and sends no
// ping of its own (as a grpcurl user would), so the server measures RTT.
type ponger struct {
	welcome *tetherv1.Welcome
	mute    atomic.Bool // set: answer no more pings
	stop    func()      // ends the stream and waits for its reader
}

// openPonger opens a Connect stream for clientID with a 1 s heartbeat,
// resuming the session of prev when it is not nil; the stream ends at
// cleanup if not before.
func openPonger(t *testing.T, cc *grpc.ClientConn, clientID string, prev *tetherv1.Welcome) *ponger {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
	if err != nil {
		cancel()
		t.Fatalf("Connect: %v", err)
	}
	hello := &tetherv1.Hello{ClientId: clientID, HeartbeatInterval: durationpb.New(time.Second), Topics: []string{"fleet.eu.berlin", "fleet.eu"}}
	if prev != nil {
		hello.Resume = &tetherv1.Resume{SessionId: prev.GetSessionId(), ResumeToken: prev.GetResumeToken()}
	}
	if err := stream.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		cancel()
		t.Fatalf("sending hello: %v", err)
	}
	first, err := stream.Recv()
	if err != nil || first.GetWelcome() == nil {
		cancel()
		t.Fatalf("welcome: %v, %v", first, err)
	}
	p := &ponger{welcome: first.GetWelcome()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, err := stream.Recv()
			if err != nil {
				return
			}
			if ping := f.GetPing(); ping != nil && !p.mute.Load() {
				pong := &tetherv1.Pong{Id: ping.GetId(), SentAt: ping.GetSentAt()}
				if stream.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Pong{Pong: pong}}) != nil {
					return
				}
			}
		}
	}()
	p.stop = func() { cancel(); <-done }
	t.Cleanup(p.stop)
	return p
}

// waitState polls a console endpoint until its body contains want.
func waitState(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		code, body := httpGet(t, http.DefaultClient, url)
		if code == http.StatusOK && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %s; want %s within %v", url, code, body, want, waitLong)
		}
		time.Sleep(20 * time.Millisecond) // polling an observable condition, bounded by the deadline
	}
}

// readerToken is the token of a principal that may look at the console
// but not act.
const readerToken = "reader-token-0123456789abcdef0123"

// TestConsoleSignInBrowser serves the console beyond loopback, with TLS and
// tokens: the page asks for a token; a reader (admin_read) sees the node
// and its sessions without a button; an admin sees kick and drain.
func TestConsoleSignInBrowser(t *testing.T) {
	certFile, keyFile, pool := writeCert(t)
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	writeFile(t, tokens, fmt.Sprintf(`{"principals":[
  {"name":"reader","token_sha256":%q,"admin_read":true},
  {"name":"ops","token_sha256":%q,"connect":true,"admin":true}
]}`, auth.HashToken(readerToken), auth.HashToken(adminToken)))
	ctx := browser(t, chromedp.Flag("ignore-certificate-errors", true)) // the test's self-signed certificate
	td := startTetherd(t, nil, "--listen", "0.0.0.0:0", "--admin-listen", "0.0.0.0:0",
		"--tls-cert", certFile, "--tls-key", keyFile, "--tokens-file", tokens)
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	s, err := client.New(client.WithAddrs(td.grpcAddr), client.WithClientID("dev1"), client.WithToken(adminToken),
		client.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	cctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := s.Connect(cctx); err != nil {
		t.Fatal(err)
	}

	signIn := func(token string) {
		t.Helper()
		browse(t, ctx, "opening the console", chromedp.Navigate("https://"+td.adminAddr+"/console/"),
			chromedp.Evaluate[chromedp.Void](`sessionStorage.clear()`), chromedp.Reload())
		poll(t, ctx, "the sign-in form", `document.querySelector("#token") !== null`, waitLong)
		browse(t, ctx, "signing in", chromedp.SendKeys(chromedp.CSS(`#token`), token), chromedp.Click(chromedp.CSS(`#sign-in`)))
	}
	signIn("wrong-token")
	poll(t, ctx, "the sign-in form again", `sessionStorage.getItem("tether-console-token") === "wrong-token" && document.querySelector(".login .error")?.textContent.startsWith("unauthorized")`, waitLong)
	signIn(readerToken)
	poll(t, ctx, "dev1 in the reader's table", `[...document.querySelectorAll("#session-table td.client")].some(td => td.textContent === "dev1")`, waitLong)
	poll(t, ctx, "the reader's name", `document.querySelector("#who")?.textContent === "signed in as reader (read-only)"`, waitLong)
	if n := evaluate[int](t, ctx, `document.querySelectorAll("button.kick, #drain").length`); n != 0 {
		t.Fatalf("the reader sees %d kick or drain buttons; want none", n)
	}
	signIn(adminToken)
	poll(t, ctx, "dev1 in the admin's table", `[...document.querySelectorAll("#session-table td.client")].some(td => td.textContent === "dev1")`, waitLong)
	poll(t, ctx, "the admin's buttons", `document.querySelectorAll("button.kick").length === 1 && document.querySelector("#drain") !== null`, waitLong)
}

// checkEscaped fails the test if the hostile names became markup or ran.
func checkEscaped(t *testing.T, ctx context.Context) {
	t.Helper()
	injected := evaluate[bool](t, ctx, `document.getElementById("pwned") !== null || window.__pwned !== undefined || document.querySelectorAll("main script, main img").length > 0`)
	if injected {
		t.Fatal("a client id or topic was put into the page as HTML")
	}
	text := evaluate[string](t, ctx, `document.querySelector("main").textContent`)
	if !strings.Contains(text, hostileID) || !strings.Contains(text, hostileTopic) {
		t.Fatalf("the page does not show the client id and topic as text:\n%s", text)
	}
}

// evaluate returns the value of a JavaScript expression.
func evaluate[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitLong)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitClosed waits until the SDK session has ended for good.
func waitClosed(t *testing.T, s *client.Session) {
	t.Helper()
	deadline := time.After(waitLong)
	for {
		select {
		case st := <-s.States():
			if st == client.StateClosed {
				return
			}
		case <-deadline:
			t.Fatalf("the kicked session is %v after %v; want closed", s.State(), waitLong)
		}
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`", "$", "\\$").Replace(s) + "`"
}
