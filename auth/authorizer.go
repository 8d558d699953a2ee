package auth

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
)

// Permission names, as they appear in the token file and in
// PermissionDenied messages.
const (
	permConnect       = "connect"
	permAdmin         = "admin"
	permPublish       = "publish"
	permPublishDirect = "publish_direct"
	permSubscribe     = "subscribe"
)

// noCredentials is the message of the Unauthenticated error for a stream
// that carries no principal at all.
const noCredentials = "no credentials: send authorization: bearer TOKEN"

// Authorizer decides what a stream may do from the [Principal] that an
// [AuthFunc] put in its context. It implements the server's Authorizer
// interface (Connect, Subscribe, Publish, Admin and Expires).
//
// Every decision first checks the principal: none gives Unauthenticated
// ("no credentials: send authorization: bearer TOKEN"), and expired
// credentials give Unauthenticated. A missing permission gives
// PermissionDenied with a message that names the permission and the
// principal, such as
//
//	principal "svc-a" lacks permission "publish" on topic "fleet.x"
//
// The errors are gRPC status errors, sent to the client verbatim; they
// never contain a token or a hash.
//
// The zero value is ready to use. An Authorizer is safe for concurrent use
// and holds no state besides Now.
type Authorizer struct {
	// Now returns the current time for expiry checks. The default (nil)
	// is time.Now.
	Now func() time.Time
}

// now returns the current time from a.Now or the clock.
func (a Authorizer) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// principal returns the unexpired principal of ctx, or an Unauthenticated
// status error.
func (a Authorizer) principal(ctx context.Context) (*Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, noCredentials)
	}
	if p.Expired(a.now()) {
		return nil, expiredError(p)
	}
	return p, nil
}

// Connect allows a session to be opened (before its Hello is accepted)
// when the principal has the connect permission.
func (a Authorizer) Connect(ctx context.Context) error {
	p, err := a.principal(ctx)
	if err != nil {
		return err
	}
	if !p.Perms.Connect {
		return denied(p, permConnect, "")
	}
	return nil
}

// Subscribe allows a subscription to topic (a Hello topic or a Subscribe
// frame) when topic matches one of the principal's Subscribe prefixes.
func (a Authorizer) Subscribe(ctx context.Context, topic string) error {
	p, err := a.principal(ctx)
	if err != nil {
		return err
	}
	if !p.Perms.CanSubscribe(topic) {
		return denied(p, permSubscribe, fmt.Sprintf(" on topic %q", topic))
	}
	return nil
}

// Publish allows a message to be sent to the address (a client's message
// or the Publish RPC): a topic by the principal's Publish prefixes, a
// session or client id by its publish_direct permission.
func (a Authorizer) Publish(ctx context.Context, to broker.Address) error {
	p, err := a.principal(ctx)
	if err != nil {
		return err
	}
	if p.Perms.CanPublish(to) {
		return nil
	}
	switch to.Kind {
	case broker.KindTopic:
		return denied(p, permPublish, fmt.Sprintf(" on topic %q", to.Name))
	case broker.KindSession, broker.KindClient:
		return denied(p, permPublishDirect, " to send to a "+to.Kind.String())
	}
	return status.Errorf(codes.PermissionDenied, "principal %q may not send to an address of kind %d", p.Name, to.Kind)
}

// Admin allows an AdminService call when the principal has the admin
// permission.
func (a Authorizer) Admin(ctx context.Context) error {
	p, err := a.principal(ctx)
	if err != nil {
		return err
	}
	if !p.Perms.Admin {
		return denied(p, permAdmin, "")
	}
	return nil
}

// Expires returns when the credentials of the stream expire: the
// principal's Expires, or the zero time (never) when it has none or there
// is no principal.
func (a Authorizer) Expires(ctx context.Context) time.Time {
	if p, ok := FromContext(ctx); ok {
		return p.Expires
	}
	return time.Time{}
}

// denied returns the PermissionDenied error for p lacking perm; detail,
// if any, starts with a space.
func denied(p *Principal, perm, detail string) error {
	return status.Errorf(codes.PermissionDenied, "principal %q lacks permission %q%s", p.Name, perm, detail)
}

// expiredError returns the Unauthenticated error for p's expired
// credentials.
func expiredError(p *Principal) error {
	return status.Errorf(codes.Unauthenticated, "credentials of principal %q expired at %s", p.Name, p.Expires.UTC().Format(time.RFC3339))
}
