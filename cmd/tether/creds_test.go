package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/tetherhq/tether/internal/tlstest"
)

// builtTetherd is the tetherd binary, built on first use.
var builtTetherd struct {
	once sync.Once
	path string
	err  error
}

// tetherdBinary builds tetherd once, into the directory TestMain removes.
func tetherdBinary(t *testing.T) string {
	t.Helper()
	binary(t) // makes built.dir
	builtTetherd.once.Do(func() {
		builtTetherd.path = filepath.Join(built.dir, "tetherd")
		if out, err := exec.Command("go", "build", "-o", builtTetherd.path, "../tetherd").CombinedOutput(); err != nil {
			builtTetherd.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if builtTetherd.err != nil {
		t.Fatalf("building tetherd: %v", builtTetherd.err)
	}
	return builtTetherd.path
}

// secureNode is a tetherd serving TLS on every interface, with bearer
// tokens and client certificates from one tokens file.
type secureNode struct {
	addr       string // 127.0.0.1 and the port it listens on
	ca         *tlstest.CA
	tokenFile  string // the token of principal "ops": everything
	clientCert tlstest.Pair
}

// serverName is the only name in the node's certificate: the CLI reaches
// it at 127.0.0.1 and checks this name, as it would a DNS name.
const serverName = "tether.example"

var listeningRE = regexp.MustCompile(`msg=listening service=grpc addr=\S*:(\d+) tls=true`)

// startSecureNode starts tetherd with --listen :0: beyond loopback, which
// it only allows with TLS and authentication. Clients connect to it over
// loopback only.
func startSecureNode(t *testing.T) *secureNode {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	srvPair := ca.Server(t, serverName)
	n := &secureNode{ca: ca, clientCert: ca.Client(t, "device-cert"), tokenFile: filepath.Join(dir, "token")}
	const token = "0123456789abcdef0123456789abcdef"
	sum := sha256.Sum256([]byte(token))
	tokens := fmt.Sprintf(`{"principals":[
  {"name":"ops","token_sha256":%q,"connect":true,"publish":["*"],"publish_direct":true,"subscribe":["*"],"admin":true},
  {"name":"device-cert","connect":true,"publish":["*"],"subscribe":["*"]}
]}`, hex.EncodeToString(sum[:]))
	tokensFile := filepath.Join(dir, "tokens.json")
	for path, content := range map[string]string{tokensFile: tokens, n.tokenFile: token + "\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(tetherdBinary(t), "--listen", ":0", "--admin-listen", "",
		"--tls-cert", srvPair.CertFile, "--tls-key", srvPair.KeyFile, "--client-ca", ca.CAFile, "--tokens-file", tokensFile)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stderr := newOutput()
	cmd.Stderr = stderr
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
	log := stderr.Await(t, "tetherd listening", waitLong, done, listeningRE.MatchString)
	n.addr = "127.0.0.1:" + listeningRE.FindStringSubmatch(log)[1]
	return n
}

// tls returns the flags that reach the node with its CA and name.
func (n *secureNode) tls(extra ...string) []string {
	return append([]string{"--addr", n.addr, "--tls-ca", n.ca.CAFile, "--tls-server-name", serverName}, extra...)
}

// tether connect reaches a tetherd serving TLS with token auth beyond
// loopback, verifying it against a self-signed CA; publish, sessions,
// agent and reply work the same way, with a token or a client certificate.
func TestTLSWithTokenAndClientCertificates(t *testing.T) {
	n := startSecureNode(t)
	withToken := func(args ...string) []string { return append(n.tls("--token-file", n.tokenFile), args...) }
	withCert := func(args ...string) []string {
		return append(n.tls("--tls-cert", n.clientCert.CertFile, "--tls-key", n.clientCert.KeyFile), args...)
	}

	conn := start(t, append([]string{"connect"}, withToken("--client-id", "dev1")...)...)
	conn.await(map[string]string{"state": "connected", "backend": n.addr})
	out := mustTether(t, "", append([]string{"publish"}, withToken("--client-id", "dev1", "--data", "over tls")...)...)
	if out != "{\"delivered\":1,\"duplicate\":false}\n" {
		t.Errorf("publish printed %q", out)
	}
	conn.await(map[string]string{"event": "message", "payload": "over tls"})
	out = mustTether(t, "", append([]string{"sessions", "list"}, withToken("--client-id", "dev1")...)...)
	if lines := events(t, out); len(lines) != 1 || lines[0].str("clientId") != "dev1" {
		t.Errorf("sessions list printed %q; want one line for dev1", out)
	}

	// mTLS: the certificate names principal device-cert; no token.
	mtls := start(t, append([]string{"connect"}, withCert("--client-id", "dev2")...)...)
	mtls.await(map[string]string{"state": "connected", "backend": n.addr})

	// An agent on a client certificate calls a responder on a token.
	start(t, append([]string{"reply", "svc.echo"}, withToken("--command", "tr a-z A-Z")...)...).
		await(map[string]string{"state": "connected"})
	sock := filepath.Join(t.TempDir(), "agent.sock")
	start(t, append([]string{"agent"}, withCert("--socket", sock, "--client-id", "web-1")...)...).
		await(map[string]string{"state": "connected"})
	code, reply, err := agentCall(ctxT(t), sock, http.MethodPost, "/v1/request", `{"topic":"svc.echo","payload":"hello","timeout":"10s"}`)
	if err != nil || code != http.StatusOK || reply["payload"] != "HELLO" {
		t.Errorf("request through the agent: %d %v %v; want 200 HELLO", code, reply, err)
	}

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no credentials", n.tls("--client-id", "dev1", "--data", "x"), "Unauthenticated"},
		{"wrong token", n.tls("--token", "not-the-token", "--client-id", "dev1", "--data", "x"), "Unauthenticated"},
		{"system roots", []string{"--addr", n.addr, "--tls", "--tls-server-name", serverName, "--token-file", n.tokenFile, "--topic", "t", "--data", "x"}, "certificate signed by unknown authority"},
		{"wrong name", []string{"--addr", n.addr, "--tls-ca", n.ca.CAFile, "--token-file", n.tokenFile, "--topic", "t", "--data", "x"}, "127.0.0.1"},
		{"plaintext", []string{"--addr", n.addr, "--token-file", n.tokenFile, "--topic", "t", "--data", "x"}, "Unavailable"},
	} {
		code, stdout, stderr := tether(t, "", append([]string{"publish"}, c.args...)...)
		if code != exitFailure || stdout != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %d and %q", c.name, code, stdout, stderr, exitFailure, c.want)
		}
	}
}

// A token never goes in plaintext beyond loopback, and the credential
// flags are checked before anything is dialed.
func TestCredentialFlags(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := tlstest.NewCA(t)
	pub := []string{"publish", "--topic", "t", "--data", "x"}
	for _, c := range []struct {
		name string
		env  string // $TETHER_TOKEN
		args []string
		want string
	}{
		{"token flag", "", []string{"--addr", "192.0.2.1:7070", "--token", "x"}, "--addr 192.0.2.1:7070 is not a loopback address: refusing to send the token there in plaintext; add --tls"},
		{"token from the environment", "x", []string{"--addr", "192.0.2.1:7070"}, "refusing to send the token there in plaintext"},
		{"one of several", "x", []string{"--addr", "127.0.0.1:7070,[2001:db8::1]:7070"}, "--addr [2001:db8::1]:7070 is not a loopback address"},
		{"token and token file", "", []string{"--token", "x", "--token-file", empty}, "--token and --token-file: give one, not both"},
		{"empty token file", "", []string{"--token-file", empty}, "the file is empty"},
		{"missing token file", "", []string{"--token-file", filepath.Join(dir, "nope")}, "--token-file: open"},
		{"cert without key", "", []string{"--tls-cert", ca.CAFile}, "--tls-cert and --tls-key go together"},
		{"not a CA file", "", []string{"--tls-ca", empty}, "no PEM certificate in it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(envToken, c.env)
			code, stdout, stderr := tether(t, "", append(pub, c.args...)...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, exitUsage, c.want)
			}
		})
	}
}
