package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/tetherhq/tether/internal/tethertest"
)

func TestHelpEverywhere(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk((&app{}).rootCmd(), nil)
	if len(paths) != 10 {
		t.Errorf("commands = %v; want tether, agent, connect, publish, reply, sessions and its list, get, close, version", paths)
	}
	for _, path := range paths {
		for _, h := range []string{"--help", "-h"} {
			code, stdout, stderr := tether(t, "", append(path, h)...)
			if code != 0 || !strings.Contains(stdout, "Usage:") || !strings.Contains(stdout, "Examples:") || stderr != "" {
				t.Errorf("tether %v %s: exit %d, stderr %q; want 0 and usage with examples:\n%s", path, h, code, stderr, stdout)
			}
		}
	}
	if code, stdout, _ := tether(t, "", "help", "publish"); code != 0 || !strings.Contains(stdout, "--idempotency-key") {
		t.Errorf("tether help publish: exit %d:\n%s", code, stdout)
	}
	if code, stdout, _ := tether(t, "", "sessions", "--help"); code != 0 || strings.Contains(stdout, "tether sessions [flags]") {
		t.Errorf("tether sessions --help shows it as runnable (exit %d):\n%s", code, stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // in stderr
	}{
		{nil, []string{"tether: missing command", "agent, connect, publish, reply, sessions, version"}},
		{[]string{"bogus"}, []string{`unknown command "bogus" for "tether"`}},
		{[]string{"sessions"}, []string{"tether sessions: missing command", "close, get, list"}},
		{[]string{"sessions", "lst"}, []string{`unknown command "lst"`, "list"}},
		{[]string{"sessions", "get"}, []string{"want one argument, the session id; got 0"}},
		{[]string{"sessions", "close", "a", "b"}, []string{"got 2"}},
		{[]string{"sessions", "get", "-Og6ufcB"}, []string{`unknown shorthand flag: 'O'`, `goes after "--": tether sessions get -- SESSION_ID`}},
		{[]string{"publish", "--data", "x"}, []string{"no target: give exactly one of --topic, --session or --client-id"}},
		{[]string{"publish", "--topic", "t", "--client-id", "c"}, []string{"exactly one of", "got --topic and --client-id"}},
		{[]string{"publish", "--topic", "t", "--session", "s", "--client-id", "c"}, []string{"got --topic and --session and --client-id"}},
		{[]string{"publish", "--topic", ""}, []string{"--topic: must not be empty"}},
		{[]string{"publish", "--topic", "t", "--header", "novalue"}, []string{`--header "novalue": want key=value`}},
		{[]string{"publish", "--topic", "t", "--addr", "a:1", "--addr", "b:1"}, []string{"one server; got 2 (a:1, b:1)"}},
		{[]string{"publish", "--topic", "t", "extra"}, []string{`unexpected argument "extra"`}},
		{[]string{"publish", "--topic", "t", "--timeout", "0s"}, []string{"--timeout 0s: must be positive"}},
		{[]string{"publish", "--bogus"}, []string{"unknown flag: --bogus"}},
		{[]string{"connect", "--profile", "lan"}, []string{"--profile", "datacenter, default, mobile"}},
		{[]string{"connect", "--heartbeat", "-1s"}, []string{"--heartbeat -1s"}},
		{[]string{"connect", "--addr", ","}, []string{`--addr ",": empty address`}},
		{[]string{"connect", "--client-id", strings.Repeat("x", 300)}, []string{"WithClientID"}},
		{[]string{"reply"}, []string{"want one argument, the topic; got 0"}},
		{[]string{"reply", "t", "--concurrency", "0"}, []string{"--concurrency 0: must be at least 1"}},
		{[]string{"reply", "t", "--command-timeout", "0s"}, []string{"--command-timeout 0s"}},
		{[]string{"agent", "--socket", "/tmp/x.sock", "--http", "0.0.0.0:0"}, []string{"not a loopback address"}},
		{[]string{"agent", "--socket", "/tmp/x.sock", "--buffer", "0"}, []string{"WithBuffer"}},
		{[]string{"agent", "--socket", "/tmp/x.sock", "extra"}, []string{`unexpected argument "extra"`}},
	} {
		code, stdout, stderr := tether(t, "", tc.args...)
		if code != 2 {
			t.Errorf("tether %v: exit %d; want 2; stderr:\n%s", tc.args, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("tether %v: stderr lacks %q:\n%s", tc.args, w, stderr)
			}
		}
		if !strings.Contains(stderr, "--help' for usage.") {
			t.Errorf("tether %v: stderr does not point to --help:\n%s", tc.args, stderr)
		}
		if len(tc.args) > 0 && tc.args[0] == "connect" && stdout != "" {
			t.Errorf("tether %v printed events before failing:\n%s", tc.args, stdout)
		}
	}
}

func TestPublishFailure(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close() // nothing listens there now
	code, stdout, stderr := tether(t, "", "publish", "--addr", addr, "--topic", "t", "--data", "x")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "tether publish: publish on "+addr+": Unavailable") {
		t.Errorf("publish to a closed port: exit %d, stdout %q, stderr %q; want 1 and Unavailable", code, stdout, stderr)
	}

	_, addr = tethertest.Serve(t)
	code, _, stderr = tether(t, "", "publish", "--addr", addr, "--topic", "bad topic", "--data", "x")
	if code != 1 || !strings.Contains(stderr, "InvalidArgument") || !strings.Contains(stderr, "spaces") {
		t.Errorf("publish to a bad topic: exit %d, stderr %q; want 1 and InvalidArgument", code, stderr)
	}
}

// built is the tether binary, built on first use; TestMain removes it.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// binary builds tether once, for the tests of real signals.
func binary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "tether-test-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "tether")
		if out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput(); err != nil {
			built.err = err
			t.Logf("go build:\n%s", out)
		}
	})
	if built.err != nil {
		t.Fatalf("building tether: %v", built.err)
	}
	return built.path
}

func TestSignalsCloseGracefully(t *testing.T) {
	_, addr := tethertest.Serve(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(binary(t), "connect", "--addr", addr, "--client-id", "sig-"+sig.String())
			cmd.Env = append(os.Environ(), envAddr+"=", envToken+"=")
			stdout, stderr := newOutput(), newOutput()
			cmd.Stdout, cmd.Stderr = stdout, stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				_ = cmd.Wait()
				close(done)
			}()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-done
			})
			await(t, stdout, done, map[string]string{"state": "connected"})
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(waitLong):
				t.Fatalf("tether did not exit within %v after %v", waitLong, sig)
			}
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("exit %d after %v; want 0; stderr:\n%s", code, sig, stderr)
			}
			await(t, stdout, done, map[string]string{"state": "closed"})
		})
	}
}
