package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// replySetup starts a server, the given tether reply responders (each
// args for "reply") and an agent, and returns the agent's socket.
func replySetup(t *testing.T, responders ...[]string) string {
	t.Helper()
	ts := startServer(t, nil)
	for _, args := range responders {
		start(t, append([]string{"reply", "--addr", ts.Addr}, args...)...).await(map[string]string{"state": "connected"})
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	start(t, "agent", "--addr", ts.Addr, "--socket", sock, "--client-id", "agent-1").await(map[string]string{"state": "connected"})
	return sock
}

// A stderr tail cut in the middle of a character still makes a valid
// error reply, and the responder goes on answering.
func TestReplyStderrTailCutMidCharacter(t *testing.T) {
	// 600 "é" (two bytes each) and an "x": the last 1024 bytes start
	// mid-character.
	sock := replySetup(t, []string{"svc.utf", "--command", `i=0; while [ $i -lt 600 ]; do printf 'é' >&2; i=$((i+1)); done; printf x >&2; exit 1`})
	ctx := ctxT(t)
	for i := range 2 {
		code, out, err := agentCall(ctx, sock, http.MethodPost, "/v1/request", `{"topic":"svc.utf","payload":"x","timeout":"5s"}`)
		msg, _ := out["error"].(string)
		if err != nil || code != http.StatusBadGateway || !strings.HasPrefix(msg, "the responder failed: exit status 1: éé") || strings.Contains(msg, "\uFFFD") {
			t.Fatalf("request %d: %d %v %v; want 502 with the stderr tail, whole characters", i, code, out, err)
		}
	}
}

func TestTailCutsOnARuneBoundary(t *testing.T) {
	tl := &tail{max: 5}
	_, _ = tl.Write([]byte("aé€😀")) // 1+2+3+4 bytes
	if s := string(tl.b); s != "😀" || !utf8.ValidString(tl.suffix()) {
		t.Errorf("tail %q; want the last whole characters within 5 bytes", s)
	}
	tl = &tail{max: 10}
	_, _ = tl.Write([]byte("ok \xff\xfe bad"))
	if s := tl.suffix(); !utf8.ValidString(s) {
		t.Errorf("suffix %q: not valid UTF-8", s)
	}
}

// The command does not see the token of tether reply's session.
func TestReplyKeepsTheTokenFromTheCommand(t *testing.T) {
	const secret = "s3cret-token-value"
	t.Setenv(envToken, secret)
	t.Setenv("COPY_OF_TOKEN", secret)
	sock := replySetup(t, []string{"svc.env", "--command", "env"})
	code, out, err := agentCall(ctxT(t), sock, http.MethodPost, "/v1/request", `{"topic":"svc.env","payload":"x","timeout":"5s"}`)
	env, _ := out["payload"].(string)
	if err != nil || code != http.StatusOK || !strings.Contains(env, "TETHER_TOPIC=svc.env") {
		t.Fatalf("request: %d %v %v", code, out, err)
	}
	if strings.Contains(env, secret) || strings.Contains(env, envToken+"=") {
		t.Errorf("the command's environment holds the token:\n%s", env)
	}
}

// A command that leaves a background child behind answers at once, and
// the child is killed with the command's process group.
func TestReplyKillsBackgroundChildren(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ts := startServer(t, nil)
	r := start(t, "reply", "svc.bg", "--addr", ts.Addr, "--command", fmt.Sprintf(`(sleep 300 & echo $! > %s); echo hi`, pidFile))
	r.await(map[string]string{"state": "connected"})
	sock := filepath.Join(t.TempDir(), "agent.sock")
	start(t, "agent", "--addr", ts.Addr, "--socket", sock, "--client-id", "agent-1").await(map[string]string{"state": "connected"})
	code, out, err := agentCall(ctxT(t), sock, http.MethodPost, "/v1/request", `{"topic":"svc.bg","payload":"x","timeout":"10s"}`)
	if err != nil || code != http.StatusOK || out["payload"] != "hi\n" {
		t.Fatalf("request: %d %v %v; want 200 hi", code, out, err)
	}
	ev := r.await(map[string]string{"event": "reply"})
	if ms, _ := ev["ms"].(float64); ms >= 1000 || ev["error"] != nil {
		t.Errorf("reply event %v; want it within a second (the background child does not hold it), no error", ev)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// Gone, or a zombie nobody reaps (pid 1 of a container may not). The
	// kill is sent before the reply, but a loaded machine may take a
	// moment to run the dying process's exit.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return
		}
		if time.Now().After(deadline) {
			_ = exec.Command("kill", "-9", strconv.Itoa(pid)).Run()
			t.Fatalf("the background sleep (pid %d) outlived its command: %s", pid, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A command killed because tether reply is stopping still gets its error
// reply.
func TestReplyErrorReplyOnShutdown(t *testing.T) {
	started := filepath.Join(t.TempDir(), "started")
	ts := startServer(t, nil)
	r := start(t, "reply", "svc.slow", "--addr", ts.Addr, "--timeout", "300ms", "--command", fmt.Sprintf(`echo > %s; exec sleep 60`, started))
	r.await(map[string]string{"state": "connected"})
	sock := filepath.Join(t.TempDir(), "agent.sock")
	start(t, "agent", "--addr", ts.Addr, "--socket", sock, "--client-id", "agent-1").await(map[string]string{"state": "connected"})
	type result struct {
		code int
		out  map[string]any
		err  error
	}
	res := make(chan result, 1)
	ctx := ctxT(t)
	go func() {
		code, out, err := agentCall(ctx, sock, http.MethodPost, "/v1/request", `{"topic":"svc.slow","payload":"x","timeout":"10s"}`)
		res <- result{code, out, err}
	}()
	for deadline := time.Now().Add(waitLong); ; time.Sleep(5 * time.Millisecond) { // wait for the command to start
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command did not start within %v", waitLong)
		}
	}
	if code := r.interrupt(); code != 0 {
		t.Errorf("tether reply exited %d; stderr:\n%s", code, r.stderr)
	}
	got := <-res
	msg, _ := got.out["error"].(string)
	if got.err != nil || got.code != http.StatusBadGateway || !strings.Contains(msg, "shutting down") {
		t.Errorf("the request: %d %v %v; want 502, the command killed by the shutdown", got.code, got.out, got.err)
	}
	for _, ev := range r.lines() {
		if ev["event"] == "reply" && strings.Contains(ev.str("error"), "sending the reply") {
			t.Errorf("reply event %v; want the error reply sent and acknowledged", ev)
		}
	}
}

// A command that exited by itself is judged by its exit status, even when
// its deadline passed before run looked.
func TestReplyExitedInTimeIsNoTimeout(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	r := &responder{f: replyFlags{commandTimeout: 1}}
	if f := r.failure(context.DeadlineExceeded, nil, cmd.ProcessState, false, &tail{max: 10}); f != "" {
		t.Errorf("exit 0 after the deadline: %q; want no failure", f)
	}
	cmd = exec.Command("sh", "-c", "kill -9 $$")
	err := cmd.Run()
	if f := r.failure(context.DeadlineExceeded, err, cmd.ProcessState, false, &tail{max: 10}); !strings.Contains(f, "was killed") {
		t.Errorf("killed after the deadline: %q; want the timeout", f)
	}
	if f := r.failure(nil, errors.New("x"), nil, false, &tail{max: 10}); !strings.Contains(f, "running the command") {
		t.Errorf("no process: %q", f)
	}
}
