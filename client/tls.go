package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// NewTLSConfig builds a client TLS configuration from PEM files: servers
// are verified against the CA certificates in caFile (the system's roots
// when caFile is empty), and certFile with keyFile is presented as the
// client certificate (mTLS; none when both are empty). Errors name the
// file. Pass the result, adjusted if need be (ServerName), to [WithTLS].
func NewTLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg, err := newTLSConfig(caFile, certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tether/client: %w", err)
	}
	return cfg, nil
}

// newTLSConfig is NewTLSConfig without the package's prefix, for
// WithTLSFiles (New adds it).
func newTLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate and its key go together: give both files or neither")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s with key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
