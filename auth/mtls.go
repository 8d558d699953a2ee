package auth

import (
	"context"
	"crypto/x509"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// MTLSAuth returns an [AuthFunc] that authenticates the client certificate
// of a TLS connection. It trusts only a certificate that the TLS stack has
// verified against the server's ClientCAs (credentials.TLSInfo
// State.VerifiedChains), so the server's tls.Config must set ClientAuth to
// tls.RequireAndVerifyClientCert or tls.VerifyClientCertIfGiven; a
// certificate that was merely presented (tls.RequestClientCert) is
// ignored.
//
// mapping turns the verified leaf certificate into a principal ([CertMapping]
// looks it up by name in a [TokenStore]). The principal's Expires is
// lowered to the earliest NotAfter of the verified chain, so that the
// stream ends when the certificate does.
//
// A call without a verified client certificate gives Unauthenticated, as
// does a mapping that returns a nil principal or an error that is not a
// gRPC status; a status error from mapping is returned as is. Expired
// credentials give Unauthenticated.
func MTLSAuth(mapping func(*x509.Certificate) (*Principal, error)) AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		chain, err := verifiedChain(ctx)
		if err != nil {
			return nil, err
		}
		leaf := chain[0]
		p, err := mapping(leaf)
		if err != nil {
			if _, ok := status.FromError(err); ok {
				return nil, err
			}
			return nil, status.Errorf(codes.Unauthenticated, "client certificate %q: %v", leaf.Subject.CommonName, err)
		}
		if p == nil {
			return nil, status.Errorf(codes.Unauthenticated, "client certificate %q maps to no principal", leaf.Subject.CommonName)
		}
		p = p.clone()
		for _, c := range chain {
			if p.Expires.IsZero() || c.NotAfter.Before(p.Expires) {
				p.Expires = c.NotAfter
			}
		}
		if p.Expired(time.Now()) {
			return nil, expiredError(p)
		}
		return NewContext(ctx, p), nil
	}
}

// verifiedChain returns the first verified certificate chain of the
// client, leaf first, or an Unauthenticated error.
func verifiedChain(ctx context.Context) ([]*x509.Certificate, error) {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no client certificate: no peer information")
	}
	info, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no client certificate: the connection is not TLS")
	}
	chains := info.State.VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return nil, status.Error(codes.Unauthenticated, "no verified client certificate")
	}
	return chains[0], nil
}

// CertMapping returns a mapping for [MTLSAuth] that finds the principal
// named by a certificate in store: its subject common name first, then
// each DNS name, then each URI (such as a SPIFFE ID) of its subject
// alternative names. A client certificate with CN "svc-a" thus gets the
// principal "svc-a" of the token file, which may leave token_sha256 empty
// if it only ever uses certificates. A certificate that names no principal
// gives Unauthenticated.
func CertMapping(store *TokenStore) func(*x509.Certificate) (*Principal, error) {
	return func(cert *x509.Certificate) (*Principal, error) {
		for _, name := range certNames(cert) {
			if p, ok := store.LookupName(name); ok {
				return p, nil
			}
		}
		return nil, status.Errorf(codes.Unauthenticated, "client certificate %q names no known principal", cert.Subject.CommonName)
	}
}

// certNames returns the names a certificate claims, in the order
// CertMapping tries them.
func certNames(cert *x509.Certificate) []string {
	var names []string
	if cert.Subject.CommonName != "" {
		names = append(names, cert.Subject.CommonName)
	}
	names = append(names, cert.DNSNames...)
	for _, u := range cert.URIs {
		names = append(names, u.String())
	}
	return names
}
