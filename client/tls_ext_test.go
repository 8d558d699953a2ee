package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
	"github.com/tetherhq/tether/internal/tlstest"
)

// WithTLSFiles and WithToken, one line, reach a server that requires a
// client certificate from a private CA and sees the token on the stream.
func TestTLSFilesAndToken(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	srvPair, cliPair := ca.Server(t, "tether.example"), ca.Client(t, "device-7")
	cert, err := tls.LoadX509KeyPair(srvPair.CertFile, srvPair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	var (
		mu   sync.Mutex
		seen []string // the authorization values of the streams
	)
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	node := tethertest.StartNode(t, []grpc.ServerOption{grpc.Creds(creds),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			mu.Lock()
			seen = append(seen, metadata.ValueFromIncomingContext(ss.Context(), "authorization")...)
			mu.Unlock()
			return handler(srv, ss)
		})})
	t.Cleanup(node.Stop)

	tlsCfg, err := client.NewTLSConfig(ca.CAFile, cliPair.CertFile, cliPair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg.ServerName = "tether.example"
	s := newSession(t, client.WithAddrs(node.Addr), client.WithTLS(tlsCfg), client.WithToken("t0ken"))
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 || seen[0] != "Bearer t0ken" {
		t.Errorf("the server saw authorization %q; want Bearer t0ken", seen)
	}

	// Without the client certificate the handshake fails; with the files
	// and no server name, the name in the address does not match.
	bad := newSession(t, client.WithAddrs(node.Addr), client.WithTLSFiles(ca.CAFile, "", ""), client.WithOpenTimeout(waitLong))
	ctx, cancel := context.WithTimeout(ctxT(t), waitLong/5)
	defer cancel()
	if err := bad.Connect(ctx); err == nil {
		t.Error("Connect without a client certificate and with the wrong name succeeded")
	}
}

// New refuses a token that would travel in plaintext beyond loopback.
func TestTokenInPlaintextRefused(t *testing.T) {
	t.Parallel()
	for _, opts := range [][]client.Option{
		{client.WithAddrs("127.0.0.1:7070", "10.0.0.1:7070")},
		{client.WithDNS("tether.example:7070")},
		{client.WithTarget("dns:///tether.example:7070")},
	} {
		_, err := client.New(append(opts, client.WithToken("x"))...)
		if err == nil || !strings.Contains(err.Error(), "WithToken: refusing to send the token in plaintext to") {
			t.Errorf("New = %v; want a refusal", err)
		}
	}
	if _, err := client.New(client.WithTLSFiles("/nonexistent/ca.pem", "", "")); err == nil || !strings.Contains(err.Error(), "WithTLSFiles: CA file: open /nonexistent/ca.pem") {
		t.Errorf("New with a missing CA file = %v", err)
	}
}
