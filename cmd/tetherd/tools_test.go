package main

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runTool runs one of the pinned tools to completion, bounded by waitLong,
// and returns its combined output and exit status.
func runTool(t *testing.T, path string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish within %v:\n%s", path, args, waitLong, out)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf("%s %v: %v", path, args, err)
	return "", -1
}

func TestGrpcurl(t *testing.T) {
	td := startTetherd(t, nil)

	out, code := runTool(t, bin.grpcurl, "-plaintext", td.grpcAddr, "list")
	for _, want := range []string{"tether.v1.TetherService", "tether.v1.AdminService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("grpcurl list exited %d without %s:\n%s", code, want, out)
		}
	}
	out, code = runTool(t, bin.grpcurl, "-plaintext", td.grpcAddr, "describe", "tether.v1.TetherService")
	if code != 0 || !strings.Contains(out, "rpc Connect ( stream .tether.v1.ConnectRequest ) returns ( stream .tether.v1.ConnectResponse );") ||
		!strings.Contains(out, "rpc Publish ( .tether.v1.PublishRequest ) returns ( .tether.v1.PublishResponse );") {
		t.Errorf("grpcurl describe exited %d without Connect and Publish:\n%s", code, out)
	}

	// A session driven by hand, as the README recipe does.
	connect := exec.Command(bin.grpcurl, "-plaintext", "-d", "@", td.grpcAddr, "tether.v1.TetherService/Connect")
	stdout := newOutput()
	connect.Stdout, connect.Stderr = stdout, stdout
	stdin, err := connect.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := connect.Start(); err != nil {
		t.Fatalf("starting grpcurl: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = connect.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = connect.Process.Kill()
		<-done
	})
	send := func(frame string) {
		t.Helper()
		if _, err := io.WriteString(stdin, frame+"\n"); err != nil {
			t.Fatalf("writing %s to grpcurl: %v", frame, err)
		}
	}

	send(`{"hello":{"clientId":"grpcurl-1","heartbeatInterval":"300s"}}`)
	stdout.Await(t, "a welcome", waitLong, done, func(s string) bool {
		return strings.Contains(s, `"sessionId"`) && strings.Contains(s, `"resumeToken"`)
	})

	out, code = runTool(t, bin.grpcurl, "-plaintext", "-d", `{"clientId":"grpcurl-1","payload":"aGVsbG8="}`,
		td.grpcAddr, "tether.v1.TetherService/Publish")
	if code != 0 || !strings.Contains(out, `"delivered": 1`) {
		t.Errorf("grpcurl Publish exited %d without \"delivered\": 1:\n%s", code, out)
	}
	stdout.Await(t, "the published message", waitLong, done, func(s string) bool {
		return strings.Contains(s, `"payload": "aGVsbG8="`)
	})

	send(`{"close":{"reason":"bye"}}`)
	if err := stdin.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(waitLong):
		t.Fatalf("grpcurl Connect did not exit within %v after close:\n%s", waitLong, stdout.String())
	}
	if code := connect.ProcessState.ExitCode(); code != 0 {
		t.Errorf("grpcurl Connect exited %d; want 0:\n%s", code, stdout.String())
	}
	td.stop()
}

func TestHealthProbe(t *testing.T) {
	td := startTetherd(t, nil)
	for _, args := range [][]string{
		{"-addr", td.grpcAddr},
		{"-addr", td.grpcAddr, "-service", "tether.v1.TetherService"},
	} {
		if out, code := runTool(t, bin.healthProbe, args...); code != 0 {
			t.Errorf("grpc-health-probe %v exited %d; want 0:\n%s", args, code, out)
		}
	}
	if out, code := runTool(t, bin.healthProbe, "-addr", td.grpcAddr, "-service", "no.such.Service"); code == 0 {
		t.Errorf("grpc-health-probe for an unknown service exited 0; want non-zero:\n%s", out)
	}
	td.stop()
}
