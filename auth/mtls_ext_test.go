package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"

	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/auth"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

// newCA makes a self-signed ECDSA CA valid for a day.
func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tether test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a leaf certificate signed by ca that expires after ttl.
// A client certificate carries cn and the DNS and URI SANs; a server
// certificate is for 127.0.0.1.
func (ca *testCA) issue(t *testing.T, client bool, cn string, ttl time.Duration, dns []string, uris ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(ttl).Truncate(time.Second),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     dns,
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// reportPrincipal is a unary interceptor, inside the auth interceptor,
// that reports the call's principal and expiry in trailers.
func reportPrincipal(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "the auth interceptor let a call through without a principal")
	}
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-principal", p.Name, "x-expires", p.Expires.UTC().Format(time.RFC3339)))
	return handler(ctx, req)
}

// startTLSServer serves grpc.health.v1 on 127.0.0.1 over TLS with the
// given client-certificate policy, authenticating every call with fn. It
// returns the address; the server stops at the end of the test.
func startTLSServer(t *testing.T, ca *testCA, clientAuth tls.ClientAuthType, fn auth.AuthFunc) string {
	t.Helper()
	cfg := &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, false, "server", time.Hour, nil)},
		ClientCAs:    ca.pool,
		ClientAuth:   clientAuth,
		MinVersion:   tls.VersionTLS13,
	}
	gs := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(cfg)),
		grpc.ChainUnaryInterceptor(grpcauth.UnaryServerInterceptor(fn), reportPrincipal),
	)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-served
	})
	return lis.Addr().String()
}

// check makes one health call to addr with the client certificates, and
// returns the principal name and expiry the server reported.
func check(t *testing.T, addr string, ca *testCA, certs ...tls.Certificate) (string, time.Time, error) {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.pool, Certificates: certs, MinVersion: tls.VersionTLS13}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	var tr metadata.MD
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Trailer(&tr))
	if err != nil {
		return "", time.Time{}, err
	}
	var exp time.Time
	if v := tr.Get("x-expires"); len(v) == 1 {
		if exp, err = time.Parse(time.RFC3339, v[0]); err != nil {
			t.Fatal(err)
		}
	}
	name := ""
	if v := tr.Get("x-principal"); len(v) == 1 {
		name = v[0]
	}
	return name, exp, nil
}

func TestMTLSAuthServer(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	store := mustLoad(t, testTokens())
	addr := startTLSServer(t, ca, tls.RequireAndVerifyClientCert, auth.MTLSAuth(auth.CertMapping(store)))

	t.Run("CN", func(t *testing.T) {
		t.Parallel()
		cert := ca.issue(t, true, "svc-a", time.Hour, nil)
		name, exp, err := check(t, addr, ca, cert)
		if err != nil {
			t.Fatal(err)
		}
		if name != "svc-a" {
			t.Errorf("principal %q, want svc-a", name)
		}
		if !exp.Equal(cert.Leaf.NotAfter) {
			t.Errorf("expires %v, want the certificate's NotAfter %v", exp, cert.Leaf.NotAfter)
		}
	})
	t.Run("DNS SAN", func(t *testing.T) {
		t.Parallel()
		name, _, err := check(t, addr, ca, ca.issue(t, true, "host-17", time.Hour, []string{"nope", "cert-only"}))
		if err != nil || name != "cert-only" {
			t.Errorf("principal %q, err %v; want cert-only", name, err)
		}
	})
	t.Run("URI SAN", func(t *testing.T) {
		t.Parallel()
		name, _, err := check(t, addr, ca, ca.issue(t, true, "", time.Hour, nil, "spiffe://tether/other", "spiffe://tether/svc-b"))
		if err != nil || name != "spiffe://tether/svc-b" {
			t.Errorf("principal %q, err %v; want spiffe://tether/svc-b", name, err)
		}
	})
	t.Run("CN before SAN", func(t *testing.T) {
		t.Parallel()
		name, _, err := check(t, addr, ca, ca.issue(t, true, "svc-a", time.Hour, []string{"cert-only"}))
		if err != nil || name != "svc-a" {
			t.Errorf("principal %q, err %v; want svc-a", name, err)
		}
	})
	t.Run("unknown SANs", func(t *testing.T) {
		t.Parallel()
		_, _, err := check(t, addr, ca, ca.issue(t, true, "", time.Hour, []string{"mallory"}, "spiffe://tether/ops-not"))
		wantCode(t, err, codes.Unauthenticated, "names no known principal")
	})
	t.Run("unknown CN", func(t *testing.T) {
		t.Parallel()
		_, _, err := check(t, addr, ca, ca.issue(t, true, "mallory", time.Hour, nil))
		wantCode(t, err, codes.Unauthenticated, `client certificate "mallory" names no known principal`)
	})
	t.Run("expired principal", func(t *testing.T) {
		t.Parallel()
		_, _, err := check(t, addr, ca, ca.issue(t, true, "old", time.Hour, nil))
		wantCode(t, err, codes.Unauthenticated, `principal "old"`, "expired")
	})
	t.Run("no certificate", func(t *testing.T) {
		t.Parallel()
		// The TLS stack refuses it before any interceptor runs.
		_, _, err := check(t, addr, ca)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("err = %v, want Unavailable (handshake refused)", err)
		}
	})
	t.Run("other CA", func(t *testing.T) {
		t.Parallel()
		_, _, err := check(t, addr, ca, newCA(t).issue(t, true, "svc-a", time.Hour, nil))
		if status.Code(err) != codes.Unavailable {
			t.Errorf("err = %v, want Unavailable (handshake refused)", err)
		}
	})
}

// TestMTLSAuthOptionalCert serves with an optional client certificate:
// without one the call reaches MTLSAuth, which refuses it, and a Chain
// falls back to the bearer token.
func TestMTLSAuthOptionalCert(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	store := mustLoad(t, testTokens())
	mtlsOnly := startTLSServer(t, ca, tls.VerifyClientCertIfGiven, auth.MTLSAuth(auth.CertMapping(store)))
	_, _, err := check(t, mtlsOnly, ca)
	wantCode(t, err, codes.Unauthenticated, "no verified client certificate")

	chained := startTLSServer(t, ca, tls.VerifyClientCertIfGiven,
		auth.Chain(auth.MTLSAuth(auth.CertMapping(store)), auth.BearerAuth(store)))
	if name, _, err := check(t, chained, ca, ca.issue(t, true, "ops", time.Hour, nil)); err != nil || name != "ops" {
		t.Errorf("chain with a certificate: %q, %v; want ops", name, err)
	}
	cfg := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS13}
	cc, err := grpc.NewClient(chained, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	var tr metadata.MD
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tokenA)
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Trailer(&tr)); err != nil {
		t.Fatal(err)
	}
	if got := tr.Get("x-principal"); len(got) != 1 || got[0] != "svc-a" {
		t.Errorf("chain with a bearer token: principal %q, want svc-a", got)
	}
}

// TestMTLSAuthPlaintext checks that a connection without TLS is refused.
func TestMTLSAuthPlaintext(t *testing.T) {
	t.Parallel()
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(grpcauth.UnaryServerInterceptor(
		auth.MTLSAuth(func(*x509.Certificate) (*auth.Principal, error) { return &auth.Principal{Name: "x"}, nil }))))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = gs.Serve(lis) }()
	defer func() { gs.Stop(); <-served }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	wantCode(t, err, codes.Unauthenticated, "not TLS")
}

// tlsPeer returns a context whose peer has the verified chain.
func tlsPeer(chain ...*x509.Certificate) context.Context {
	info := credentials.TLSInfo{}
	if len(chain) > 0 {
		info.State.VerifiedChains = [][]*x509.Certificate{chain}
	}
	return peer.NewContext(context.Background(), &peer.Peer{AuthInfo: info})
}

// TestMTLSAuthMapping covers the mapping's results and the expiry rules
// without a connection.
func TestMTLSAuthMapping(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	leaf := ca.issue(t, true, "svc-a", time.Hour, nil).Leaf
	ret := func(p *auth.Principal, err error) auth.AuthFunc {
		return auth.MTLSAuth(func(c *x509.Certificate) (*auth.Principal, error) {
			if c != leaf {
				t.Errorf("mapping got %q, want the leaf", c.Subject.CommonName)
			}
			return p, err
		})
	}

	_, err := ret(nil, nil)(context.Background())
	wantCode(t, err, codes.Unauthenticated, "no peer")
	_, err = ret(nil, nil)(tlsPeer())
	wantCode(t, err, codes.Unauthenticated, "no verified client certificate")

	_, err = ret(nil, nil)(tlsPeer(leaf, ca.cert))
	wantCode(t, err, codes.Unauthenticated, `"svc-a" maps to no principal`)
	_, err = ret(nil, errNotStatus)(tlsPeer(leaf, ca.cert))
	wantCode(t, err, codes.Unauthenticated, `client certificate "svc-a": plain failure`)
	_, err = ret(nil, status.Error(codes.PermissionDenied, "revoked"))(tlsPeer(leaf, ca.cert))
	wantCode(t, err, codes.PermissionDenied, "revoked")

	// The principal's own expiry stays when it is earlier than the
	// certificate's, and the mapping's principal is not modified.
	soon := time.Now().Add(time.Minute).Truncate(time.Second)
	mapped := &auth.Principal{Name: "svc-a", Expires: soon}
	ctx, err := ret(mapped, nil)(tlsPeer(leaf, ca.cert))
	if err != nil {
		t.Fatal(err)
	}
	if got := principalOf(t, ctx).Expires; !got.Equal(soon) {
		t.Errorf("expires %v, want the principal's %v", got, soon)
	}
	later := time.Now().Add(48 * time.Hour)
	mapped = &auth.Principal{Name: "svc-a", Expires: later}
	ctx, err = ret(mapped, nil)(tlsPeer(leaf, ca.cert))
	if err != nil {
		t.Fatal(err)
	}
	if got := principalOf(t, ctx).Expires; !got.Equal(leaf.NotAfter) {
		t.Errorf("expires %v, want the leaf's NotAfter %v", got, leaf.NotAfter)
	}
	if !mapped.Expires.Equal(later) {
		t.Error("MTLSAuth modified the mapping's principal")
	}
	// The CA expiring first bounds the principal too.
	short := newCA(t)
	short.cert.NotAfter = time.Now().Add(time.Minute).Truncate(time.Second)
	ctx, err = ret(&auth.Principal{Name: "svc-a"}, nil)(tlsPeer(leaf, short.cert))
	if err != nil {
		t.Fatal(err)
	}
	if got := principalOf(t, ctx).Expires; !got.Equal(short.cert.NotAfter) {
		t.Errorf("expires %v, want the CA's NotAfter %v", got, short.cert.NotAfter)
	}
	// Expired principal.
	_, err = ret(&auth.Principal{Name: "svc-a", Expires: time.Now().Add(-time.Second)}, nil)(tlsPeer(leaf, ca.cert))
	wantCode(t, err, codes.Unauthenticated, "expired")
}
