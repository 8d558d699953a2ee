package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tetherhq/tether/auth"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

func TestServesGRPCAndAdmin(t *testing.T) {
	td := startTetherd(t, nil)
	cc := dial(t, td.grpcAddr)
	checkHealth(t, cc, healthpb.HealthCheckResponse_SERVING, "", "tether.v1.TetherService")

	services := listServices(t, cc)
	for _, want := range []string{
		"tether.v1.TetherService", "tether.v1.AdminService", "grpc.health.v1.Health",
		"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
	} {
		if !slices.Contains(services, want) {
			t.Errorf("reflection lists %v; want %s among them", services, want)
		}
	}

	admin := "http://" + td.adminAddr
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/nope": 404} {
		if code, body := httpGet(t, http.DefaultClient, admin+path); code != want {
			t.Errorf("GET %s = %d %q; want %d", path, code, body, want)
		}
	}
	if _, body := httpGet(t, http.DefaultClient, admin+"/metrics"); !strings.Contains(body, "tether_sessions") ||
		!strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_start_time_seconds") {
		t.Errorf("/metrics lacks tether_sessions, go_goroutines or process_start_time_seconds:\n%s", body)
	}

	s := connect(t, cc, "probe")
	code, body := httpGet(t, http.DefaultClient, admin+"/debug/sessions")
	var list tetherv1.ListSessionsResponse
	if err := protojson.Unmarshal([]byte(body), &list); code != 200 || err != nil {
		t.Fatalf("/debug/sessions = %d, not ListSessionsResponse JSON (%v):\n%s", code, err, body)
	}
	if len(list.GetSessions()) != 1 || list.GetSessions()[0].GetClientId() != "probe" ||
		list.GetSessions()[0].GetSessionId() != s.welcome.GetSessionId() {
		t.Errorf("/debug/sessions shows %v; want the probe session %s", list.GetSessions(), s.welcome.GetSessionId())
	}
	// Operators read the JSON directly: check the field name too.
	var raw struct {
		Sessions []struct {
			ClientID string `json:"clientId"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil || len(raw.Sessions) != 1 || raw.Sessions[0].ClientID != "probe" {
		t.Errorf("/debug/sessions JSON has no session with \"clientId\": \"probe\" (%v):\n%s", err, body)
	}
	td.stop()
}

// listServices asks server reflection v1 for the services.
func listServices(t *testing.T, cc *grpc.ClientConn) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("ServerReflectionInfo: %v", err)
	}
	req := &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}
	if err := stream.Send(req); err != nil {
		t.Fatalf("reflection send: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection recv: %v", err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	_ = stream.CloseSend()
	return names
}

func TestSIGTERMDrains(t *testing.T) {
	// Two sessions and a 6 s window: the second go_away comes 3 s after the
	// first, which leaves a wide gap to see /readyz and health while draining.
	td := startTetherd(t, nil, "--drain-window", "6s", "--drain-grace", "20s")
	cc := dial(t, td.grpcAddr)
	sessions := []*session{connect(t, cc, "a"), connect(t, cc, "b")}
	td.signal(syscall.SIGTERM)

	first := make(chan *tetherv1.GoAway, len(sessions))
	for _, s := range sessions {
		go func() {
			for f := range s.frames {
				if ga := f.GetGoAway(); ga != nil {
					first <- ga
					return
				}
			}
		}()
	}
	ga := receive(t, first)
	if ga.GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_DRAIN {
		t.Errorf("go_away reason = %v; want GO_AWAY_REASON_DRAIN", ga.GetReason())
	}
	if code, body := httpGet(t, http.DefaultClient, "http://"+td.adminAddr+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining = %d %q; want 503", code, body)
	}
	checkHealth(t, cc, healthpb.HealthCheckResponse_NOT_SERVING, "", "tether.v1.TetherService")

	if ga := receive(t, first); ga.GetReason() != tetherv1.GoAwayReason_GO_AWAY_REASON_DRAIN {
		t.Errorf("go_away reason = %v; want GO_AWAY_REASON_DRAIN", ga.GetReason())
	}
	for _, s := range sessions {
		if err := s.waitEnd(t); !errors.Is(err, io.EOF) {
			t.Errorf("stream ended with %v; want OK (io.EOF)", err)
		}
	}
	if code := td.exit(); code != 0 {
		t.Fatalf("tetherd exited %d after SIGTERM; want 0", code)
	}
	td.waitLog(map[string]string{"msg": "tetherd stopped"})
}

// receive waits for a value from ch.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLong):
		t.Fatalf("nothing received within %v", waitLong)
		var zero T
		return zero
	}
}

func TestRefusesPlaintextBeyondLoopback(t *testing.T) {
	for _, tc := range []struct{ flag, addr string }{
		{"--listen", "0.0.0.0:0"},
		{"--listen", ":0"},
		{"--admin-listen", "0.0.0.0:0"},
	} {
		t.Run(tc.flag+"="+tc.addr, func(t *testing.T) {
			t.Parallel()
			p := startProc(t, nil, tc.flag, tc.addr)
			if code := p.exit(); code != 2 {
				t.Errorf("exit status %d; want 2", code)
			}
			if out := p.stderr.String(); !strings.Contains(out, "--insecure") || !strings.Contains(out, tc.flag+" "+tc.addr) {
				t.Errorf("stderr does not name %s %s and --insecure:\n%s", tc.flag, tc.addr, out)
			}

			td := startTetherd(t, nil, tc.flag, tc.addr, "--insecure")
			checkHealth(t, dial(t, td.grpcAddr), healthpb.HealthCheckResponse_SERVING, "")
			if code, _ := httpGet(t, http.DefaultClient, "http://"+td.adminAddr+"/healthz"); code != http.StatusOK {
				t.Errorf("/healthz = %d; want 200", code)
			}
			td.stop()
		})
	}
}

func TestServesTLS(t *testing.T) {
	certFile, keyFile, pool := writeCert(t)
	tokens := writeTokens(t)
	// Every interface, with TLS and authentication: no --insecure needed.
	td := startTetherd(t, nil, "--listen", "0.0.0.0:0", "--admin-listen", "0.0.0.0:0",
		"--tls-cert", certFile, "--tls-key", keyFile, "--tokens-file", tokens)
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	cc := dial(t, td.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	// Health needs no credentials.
	checkHealth(t, cc, healthpb.HealthCheckResponse_SERVING, "", "tether.v1.TetherService")
	ctx := context.Background()
	as := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	pub := &tetherv1.PublishRequest{Target: &tetherv1.PublishRequest_Topic{Topic: "fleet.x"}, Payload: []byte("x")}
	if _, err := tetherv1.NewTetherServiceClient(cc).Publish(ctx, pub); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Publish without a token: %v; want Unauthenticated", err)
	}
	if _, err := tetherv1.NewTetherServiceClient(cc).Publish(as("garbage"), pub); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Publish with a garbage token: %v; want Unauthenticated", err)
	}
	if _, err := tetherv1.NewTetherServiceClient(cc).Publish(as(publisherToken), pub); err != nil {
		t.Errorf("Publish with the publisher's token: %v", err)
	}
	if _, err := tetherv1.NewAdminServiceClient(cc).ListSessions(as(publisherToken), &tetherv1.ListSessionsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("ListSessions with a publish-only token: %v; want PermissionDenied", err)
	}
	if _, err := tetherv1.NewAdminServiceClient(cc).ListSessions(as(adminToken), &tetherv1.ListSessionsRequest{}); err != nil {
		t.Errorf("ListSessions with the admin token: %v", err)
	}
	// The admin HTTP endpoint beyond loopback wants the admin token too;
	// the probes stay open.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	defer client.CloseIdleConnections()
	if code, _ := httpGet(t, client, "https://"+td.adminAddr+"/readyz"); code != http.StatusOK {
		t.Errorf("https /readyz = %d; want 200", code)
	}
	if code, _ := httpGet(t, client, "https://"+td.adminAddr+"/metrics"); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token = %d; want 401", code)
	}
	for token, want := range map[string]int{publisherToken: http.StatusForbidden, adminToken: http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, "https://"+td.adminAddr+"/debug/sessions", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("/debug/sessions with a token = %d; want %d", resp.StatusCode, want)
		}
	}
	td.stop()
}

// The tokens the test tokens file knows.
const (
	publisherToken = "publisher-token-0123456789abcdef"
	adminToken     = "admin-token-0123456789abcdef0123"
)

// writeTokens writes a tokens file with a publish-only principal and an
// admin, their tokens stored as SHA-256 hashes.
func writeTokens(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.json")
	writeFile(t, path, fmt.Sprintf(`{"principals":[
  {"name":"publisher","token_sha256":%q,"connect":true,"publish":["fleet."]},
  {"name":"ops","token_sha256":%q,"connect":true,"admin":true,"publish":["*"],"publish_direct":true,"subscribe":["*"]}
]}`, auth.HashToken(publisherToken), auth.HashToken(adminToken)))
	return path
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files, and returns them with a pool that trusts the certificate.
func writeCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tetherd test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestServerIDFromEnvAndConfigFile(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "tetherd.conf")
	writeFile(t, plain, "# tetherd settings\nserver-id from-file # the node\n")
	jsonFile := filepath.Join(dir, "tetherd.json")
	writeFile(t, jsonFile, `{"server-id": "from-json"}`)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"env", []string{"TETHER_SERVER_ID=from-env"}, nil, "from-env"},
		{"config file", nil, []string{"--config", plain}, "from-file"},
		{"JSON config file", nil, []string{"--config", jsonFile}, "from-json"},
		{"config file from env", []string{"TETHER_CONFIG=" + plain}, nil, "from-file"},
		{"env beats file", []string{"TETHER_SERVER_ID=from-env"}, []string{"--config", plain}, "from-env"},
		{"flag beats env", []string{"TETHER_SERVER_ID=from-env"}, []string{"--server-id", "from-flag"}, "from-flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			td := startTetherd(t, tc.env, tc.args...)
			cc := dial(t, td.grpcAddr)
			if got := connect(t, cc, "c").welcome.GetServerId(); got != tc.want {
				t.Errorf("welcome.serverId = %q; want %q", got, tc.want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			list, err := tetherv1.NewAdminServiceClient(cc).ListSessions(ctx, &tetherv1.ListSessionsRequest{})
			if err != nil {
				t.Fatalf("ListSessions: %v", err)
			}
			if len(list.GetSessions()) != 1 || list.GetSessions()[0].GetServerId() != tc.want {
				t.Errorf("ListSessions = %v; want one session on %q", list.GetSessions(), tc.want)
			}
			td.stop()
		})
	}
}
