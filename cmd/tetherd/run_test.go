package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// clearEnv hides the TETHER_ variables of the test's environment from
// in-process runs.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix+"_") {
			t.Setenv(k, "")
		}
	}
}

func TestRunRejectsBadSettings(t *testing.T) {
	clearEnv(t)
	badConfig := filepath.Join(t.TempDir(), "bad.conf")
	writeFile(t, badConfig, "listen-on 127.0.0.1:7070\n")
	certFile, keyFile, _ := writeCert(t)
	for _, tc := range []struct {
		name string
		env  string // NAME=value, or empty
		args []string
		want []string // in stderr
	}{
		{"unknown profile", "", []string{"--profile", "lan"}, []string{"--profile", "datacenter, default, mobile"}},
		{"log format", "", []string{"--log-format", "xml"}, []string{"--log-format", "text or json"}},
		{"log level", "", []string{"--log-level", "loud"}, []string{"log-level"}},
		{"cert without key", "", []string{"--tls-cert", "cert.pem"}, []string{"--tls-cert and --tls-key"}},
		{"missing key pair", "", []string{"--tls-cert", "nope.pem", "--tls-key", "nope.key"}, []string{"--tls-cert/--tls-key", "nope.pem"}},
		{"drain window", "", []string{"--drain-window", "30s"}, []string{"--drain-window 30s must be shorter than --drain-grace 30s"}},
		{"drain grace", "", []string{"--drain-grace", "0s"}, []string{"--drain-grace 0s"}},
		{"gRPC beyond loopback", "", []string{"--listen", "0.0.0.0:7070"}, []string{"--listen 0.0.0.0:7070", "--insecure", "--tls-cert"}},
		{"gRPC on every interface", "", []string{"--listen", ":7070"}, []string{"--listen :7070", "--insecure"}},
		{"gRPC beyond loopback with TLS but no auth", "", []string{"--listen", "0.0.0.0:7070", "--tls-cert", certFile, "--tls-key", keyFile},
			[]string{"without authentication (--tokens-file)", "--insecure"}},
		{"client CA without TLS", "", []string{"--client-ca", "ca.pem"}, []string{"--client-ca needs --tls-cert"}},
		{"client CA without tokens", "", []string{"--client-ca", certFile, "--tls-cert", certFile, "--tls-key", keyFile}, []string{"--client-ca needs --tokens-file"}},
		{"bad tokens file", "", []string{"--tokens-file", badConfig}, []string{"--tokens-file"}},
		{"admin beyond loopback", "", []string{"--admin-listen", "[::]:9090"}, []string{"--admin-listen [::]:9090", "--insecure"}},
		{"bad address", "", []string{"--listen", "7070"}, []string{"--listen \"7070\"", "missing port"}},
		{"argument", "", []string{"serve"}, []string{`unexpected argument "serve"`}},
		{"unknown flag", "", []string{"--bogus"}, []string{"-bogus"}},
		{"server limit", "", []string{"--max-message-bytes", "10"}, []string{"WithMaxMessageBytes"}},
		{"missing config file", "", []string{"--config", "/nonexistent/tetherd.conf"}, []string{"/nonexistent/tetherd.conf"}},
		{"unknown config key", "", []string{"--config", badConfig}, []string{`"listen-on"`}},
		{"bad environment", "TETHER_MAX_SESSIONS=lots", nil, []string{"TETHER_MAX_SESSIONS"}},
		{"unknown broker", "", []string{"--broker", "bogus"}, []string{`--broker "bogus"`, "memory or nats"}},
		{"NATS retention below the resume window", "", []string{"--broker", "nats", "--nats-retention", "1m"},
			[]string{"--nats-retention 1m0s is shorter than --resume-window 2m0s"}},
		{"NATS retention from the environment", "TETHER_NATS_RETENTION=30s", []string{"--broker", "nats", "--resume-window", "1m"},
			[]string{"--nats-retention 30s is shorter than --resume-window 1m0s"}},
		{"NATS storage", "", []string{"--broker", "nats", "--nats-storage", "disk"}, []string{`--nats-storage "disk"`, "file or memory"}},
		{"NATS durability", "", []string{"--broker", "nats", "--nats-durability", "disk"}, []string{`--nats-durability "disk"`, "cluster or node"}},
		{"NATS replicas", "", []string{"--broker", "nats", "--nats-replicas", "7"}, []string{"--nats-replicas 7", "1 to 5"}},
		{"NATS prefix", "", []string{"--broker", "nats", "--nats-prefix", "a.b"}, []string{`--nats-prefix "a.b"`}},
		{"NATS URL", "", []string{"--broker", "nats", "--nats-url", ""}, []string{"--nats-url"}},
		{"NATS auth twice", "", []string{"--broker", "nats", "--nats-token", "t", "--nats-user", "u", "--nats-password", "p"},
			[]string{"--nats-user and --nats-token", "one way to authenticate"}},
		{"NATS user without password", "", []string{"--broker", "nats", "--nats-user", "u"}, []string{"--nats-user and --nats-password"}},
		{"NATS missing creds", "", []string{"--broker", "nats", "--nats-creds", "/nonexistent/tether.creds"}, []string{"--nats-creds", "/nonexistent/tether.creds"}},
		{"NATS missing nkey", "", []string{"--broker", "nats", "--nats-nkey", "/nonexistent/tether.nk"}, []string{"--nats-nkey", "/nonexistent/tether.nk"}},
		{"NATS CA not PEM", "", []string{"--broker", "nats", "--nats-tls-ca", badConfig}, []string{"--nats-tls-ca", "no PEM certificate"}},
		{"NATS cert without key", "", []string{"--broker", "nats", "--nats-tls-cert", certFile}, []string{"--nats-tls-cert and --nats-tls-key"}},
		{"NATS bad key pair", "", []string{"--broker", "nats", "--nats-tls-cert", certFile, "--nats-tls-key", badConfig}, []string{"--nats-tls-cert/--nats-tls-key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if k, v, ok := strings.Cut(tc.env, "="); ok {
				t.Setenv(k, v)
			}
			stderr := newOutput()
			err := run(context.Background(), tc.args, io.Discard, stderr)
			if code := exitCode(err); code != 2 {
				t.Errorf("exit status %d (%v); want 2", code, err)
			}
			for _, want := range tc.want {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	stderr := newOutput()
	err := run(context.Background(), []string{"-h"}, io.Discard, stderr)
	if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 {
		t.Errorf("run -h = %v (exit status %d); want flag.ErrHelp, 0", err, exitCode(err))
	}
	fs := newFlagSet(&config{})
	want := []string{"Usage: tetherd", "Examples:", "tetherd --listen 0.0.0.0:7070 --insecure"}
	fs.VisitAll(func(f *flag.Flag) {
		want = append(want, "--"+f.Name, envName(f.Name))
		if f.Usage == "" {
			t.Errorf("--%s has no help text", f.Name)
		}
	})
	for _, w := range want {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("usage lacks %q:\n%s", w, stderr)
		}
	}
}

func TestRunInProcess(t *testing.T) {
	clearEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := newOutput()
	ended := make(chan struct{})
	var err error
	go func() {
		defer close(ended)
		err = run(ctx, []string{"--log-format", "json", "--listen", "127.0.0.1:0", "--admin-listen", "", "--server-id", "in-process"}, io.Discard, stderr)
	}()
	s := stderr.Await(t, "serving", waitLong, ended, func(s string) bool {
		_, ok := findLog(s, map[string]string{"msg": "serving"})
		return ok
	})
	if _, ok := findLog(s, map[string]string{"msg": "listening", "service": "admin"}); ok {
		t.Errorf("an admin server listens despite --admin-listen=\"\":\n%s", s)
	}
	if _, ok := findLog(s, map[string]string{"msg": "effective configuration", "level": "INFO", "server-id": "in-process", "admin-listen": "", "drain-grace": "30s"}); !ok {
		t.Errorf("no INFO line with the effective configuration:\n%s", s)
	}
	rec, _ := findLog(s, map[string]string{"msg": "listening", "service": "grpc"})
	cc := dial(t, dialable(t, rec))
	checkHealth(t, cc, healthpb.HealthCheckResponse_SERVING, "", "tether.v1.TetherService")
	if got := connect(t, cc, "in-process").welcome.GetServerId(); got != "in-process" {
		t.Errorf("welcome.serverId = %q; want in-process", got)
	}

	cancel()
	select {
	case <-ended:
	case <-time.After(waitLong):
		t.Fatalf("run did not return within %v after its context ended", waitLong)
	}
	if err != nil {
		t.Errorf("run after cancel = %v; want nil", err)
	}
}

func TestRunCannotListen(t *testing.T) {
	clearEnv(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	for _, flagName := range []string{"--listen", "--admin-listen"} {
		t.Run(flagName, func(t *testing.T) {
			args := []string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", flagName, addr}
			stderr := newOutput()
			err := run(context.Background(), args, io.Discard, stderr)
			if code := exitCode(err); code != 1 {
				t.Errorf("exit status %d (%v); want 1", code, err)
			}
			if !strings.Contains(stderr.String(), flagName+": listen tcp "+addr) {
				t.Errorf("stderr does not name %s and the address in use:\n%s", flagName, stderr)
			}
		})
	}
}
