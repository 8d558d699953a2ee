package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/tethertest"
)

// waitLong bounds every wait for something that must happen, generously:
// the machine may be busy and the binaries built with -race.
const waitLong = 20 * time.Second

// bin holds the paths of the binaries TestMain builds.
var bin struct {
	tetherd, grpcurl, healthProbe string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tetherd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// buildBinaries builds tetherd (with -race when the tests have it) and the
// pinned grpcurl and grpc-health-probe from tools/go.mod into dir.
func buildBinaries(dir string) error {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return err
	}
	bin.tetherd = filepath.Join(dir, "tetherd")
	bin.grpcurl = filepath.Join(dir, "grpcurl")
	bin.healthProbe = filepath.Join(dir, "grpc-health-probe")
	tetherd := []string{"build", "-o", bin.tetherd}
	if raceEnabled {
		tetherd = append(tetherd, "-race")
	}
	modfile := "-modfile=" + filepath.Join(root, "tools", "go.mod")
	for _, args := range [][]string{
		append(tetherd, "./cmd/tetherd"),
		{"build", modfile, "-o", bin.grpcurl, "github.com/fullstorydev/grpcurl/cmd/grpcurl"},
		{"build", modfile, "-o", bin.healthProbe, "github.com/grpc-ecosystem/grpc-health-probe"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// output is the project's test output collector.
type output = tethertest.Output

func newOutput() *output { return tethertest.NewOutput() }

// logRecord is one JSON log line.
type logRecord map[string]any

// findLog returns the first JSON log record in s that has every key=value
// of want.
func findLog(s string, want map[string]string) (logRecord, bool) {
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec logRecord
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		match := true
		for k, v := range want {
			if fmt.Sprint(rec[k]) != v {
				match = false
				break
			}
		}
		if match {
			return rec, true
		}
	}
	return nil, false
}

// proc is a tetherd process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *output
	done   chan struct{} // closed when the process has exited
}

// startProc starts tetherd with args, in the test's environment less any
// TETHER_ variable, plus env.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(bin.tetherd, args...), stderr: newOutput(), done: make(chan struct{})}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix+"_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting tetherd: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if out := p.stderr.String(); strings.Contains(out, "DATA RACE") {
			t.Errorf("tetherd reported a data race:\n%s", out)
		} else if t.Failed() {
			t.Logf("tetherd stderr:\n%s", out)
		}
	})
	return p
}

// exit waits for the process to end and returns its exit status.
func (p *proc) exit() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(waitLong):
		p.t.Fatalf("tetherd did not exit within %v; stderr:\n%s", waitLong, p.stderr.String())
		return -1
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitLog waits for a JSON log record with every key=value of want.
func (p *proc) waitLog(want map[string]string) logRecord {
	p.t.Helper()
	s := p.stderr.Await(p.t, fmt.Sprintf("log line %v", want), waitLong, p.done, func(s string) bool {
		_, ok := findLog(s, want)
		return ok
	})
	rec, _ := findLog(s, want)
	return rec
}

// tetherd is a serving tetherd process and its addresses.
type tetherd struct {
	*proc
	grpcAddr  string // dialable: on 127.0.0.1
	adminAddr string // dialable; empty without an admin server
}

// startTetherd starts tetherd with JSON logs on free loopback ports, then
// args, and waits until it serves.
func startTetherd(t *testing.T, env []string, args ...string) *tetherd {
	t.Helper()
	base := []string{"--log-format", "json", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}
	p := startProc(t, env, append(base, args...)...)
	p.waitLog(map[string]string{"msg": "serving"})
	td := &tetherd{proc: p}
	out := p.stderr.String()
	rec, _ := findLog(out, map[string]string{"msg": "listening", "service": "grpc"})
	td.grpcAddr = dialable(t, rec)
	if rec, ok := findLog(out, map[string]string{"msg": "listening", "service": "admin"}); ok {
		td.adminAddr = dialable(t, rec)
	}
	return td
}

// dialable turns a logged listen address into one on 127.0.0.1, so that
// tests only ever send traffic to loopback, also to a server listening on
// every interface.
func dialable(t *testing.T, rec logRecord) string {
	t.Helper()
	addr, _ := rec["addr"].(string)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("logged addr %q: %v", addr, err)
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// stop sends SIGTERM and checks that tetherd exits 0.
func (td *tetherd) stop() {
	td.t.Helper()
	td.signal(syscall.SIGTERM)
	if code := td.exit(); code != 0 {
		td.t.Fatalf("tetherd exited %d after SIGTERM; want 0", code)
	}
}

// dial returns a plaintext client connection to addr, closed at cleanup.
func dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatalf("grpc.NewClient(%s): %v", addr, err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// checkHealth checks that every service reports st.
func checkHealth(t *testing.T, cc *grpc.ClientConn, st healthpb.HealthCheckResponse_ServingStatus, services ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for _, svc := range services {
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("health check %q: %v", svc, err)
		}
		if resp.GetStatus() != st {
			t.Errorf("health of %q = %v; want %v", svc, resp.GetStatus(), st)
		}
	}
}

// httpGet fetches url and returns the status code and body.
func httpGet(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// session is one Connect stream after its welcome, with its frames read in
// the background.
type session struct {
	welcome *tetherv1.Welcome
	stream  tetherv1.TetherService_ConnectClient
	frames  chan *tetherv1.ConnectResponse // closed when the stream ends
	end     error                          // why it ended, set before frames closes
}

// connect opens a session for clientID with a long heartbeat (so no ping
// gets in the way) and waits for its welcome. The stream is cancelled at
// cleanup.
func connect(t *testing.T, cc *grpc.ClientConn, clientID string) *session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	stream, err := tetherv1.NewTetherServiceClient(cc).Connect(ctx)
	if err != nil {
		cancel()
		t.Fatalf("Connect: %v", err)
	}
	s := &session{stream: stream, frames: make(chan *tetherv1.ConnectResponse, 64)}
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	hello := &tetherv1.Hello{ClientId: clientID, HeartbeatInterval: durationpb.New(5 * time.Minute)}
	if err := stream.Send(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		t.Fatalf("sending hello: %v", err)
	}
	go func() {
		defer close(done)
		defer close(s.frames)
		for {
			f, err := stream.Recv()
			if err != nil {
				s.end = err
				return
			}
			select {
			case s.frames <- f:
			case <-ctx.Done():
				s.end = ctx.Err()
				return
			}
		}
	}()
	f := s.next(t)
	if s.welcome = f.GetWelcome(); s.welcome == nil {
		t.Fatalf("first frame = %v; want a welcome", f)
	}
	return s
}

// next returns the next frame; it fails the test if the stream ends first.
func (s *session) next(t *testing.T) *tetherv1.ConnectResponse {
	t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			t.Fatalf("the stream ended: %v", s.end)
		}
		return f
	case <-time.After(waitLong):
		t.Fatalf("no frame within %v", waitLong)
		return nil
	}
}

// waitGoAway skips frames until a go_away and returns it.
func (s *session) waitGoAway(t *testing.T) *tetherv1.GoAway {
	t.Helper()
	for {
		if ga := s.next(t).GetGoAway(); ga != nil {
			return ga
		}
	}
}

// waitEnd skips frames until the stream ends and returns why.
func (s *session) waitEnd(t *testing.T) error {
	t.Helper()
	timeout := time.After(waitLong)
	for {
		select {
		case _, ok := <-s.frames:
			if !ok {
				return s.end
			}
		case <-timeout:
			t.Fatalf("the stream did not end within %v", waitLong)
		}
	}
}
