package server

import (
	"context"
	"time"

	"github.com/tetherhq/tether/broker"
)

// Authorizer decides what the principal behind a call may do. The server
// asks it before accepting Hello, for every topic subscribed, for every
// message a client addresses (replies excepted: they answer a request the
// session received) and for every Publish and AdminService call. Errors
// should be gRPC status errors: PERMISSION_DENIED naming what is missing,
// or UNAUTHENTICATED; they reach the client as they are.
//
// Authentication runs once, when a stream starts; Expires lets credentials
// that expire mid-session end the stream (with UNAUTHENTICATED) at that
// moment instead of never. Implementations must be safe for concurrent
// use; the package auth has one built on principals and permissions.
type Authorizer interface {
	// Connect decides whether the stream may open a session at all.
	Connect(ctx context.Context) error
	// Subscribe decides whether the stream may subscribe to topic.
	Subscribe(ctx context.Context, topic string) error
	// Publish decides whether the caller may send a message to to.
	Publish(ctx context.Context, to broker.Address) error
	// Admin decides whether the caller may use AdminService.
	Admin(ctx context.Context) error
	// Expires returns when the stream's credentials expire; zero for
	// never.
	Expires(ctx context.Context) time.Time
}

// AllowAll is the default Authorizer: everyone may do everything, and
// nothing expires. Use it only where the network is the boundary (tetherd
// refuses to listen beyond loopback without TLS and auth).
type AllowAll struct{}

// Connect allows.
func (AllowAll) Connect(context.Context) error { return nil }

// Subscribe allows.
func (AllowAll) Subscribe(context.Context, string) error { return nil }

// Publish allows.
func (AllowAll) Publish(context.Context, broker.Address) error { return nil }

// Admin allows.
func (AllowAll) Admin(context.Context) error { return nil }

// Expires never.
func (AllowAll) Expires(context.Context) time.Time { return time.Time{} }
