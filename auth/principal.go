package auth

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/tetherhq/tether/broker"
)

// Principal is an authenticated identity and what it may do. The
// [AuthFunc]s of this package put one in a stream's context with
// [NewContext]; the [Authorizer] reads it back with [FromContext].
//
// A Principal is a value: treat one that is in a context as read-only. The
// [TokenStore] hands out a fresh copy on every lookup, so a session keeps
// the Principal it authenticated with even after the token file is
// reloaded.
type Principal struct {
	// Name identifies the principal. Sessions are bound to it (see
	// [Name] and server.WithPrincipal), and errors name it.
	Name string
	// Perms is what the principal may do.
	Perms Permissions
	// RateExempt exempts the principal from the per-principal call rate
	// limits (see [RateExempt]): for a service you run, such as a backend
	// that publishes for many users, not for devices or users.
	RateExempt bool
	// Expires is when the principal's credentials stop being valid; the
	// zero time means never. A stream whose credentials expire is refused
	// (at authentication and by the [Authorizer]) and ended by the server.
	Expires time.Time
}

// Expired reports whether the credentials have expired at now: Expires is
// set and is not after now.
func (p *Principal) Expired(now time.Time) bool {
	return !p.Expires.IsZero() && !now.Before(p.Expires)
}

// clone returns a deep copy of p, so that callers may not alter a
// principal shared by other streams.
func (p *Principal) clone() *Principal {
	c := *p
	c.Perms.Publish = slices.Clone(p.Perms.Publish)
	c.Perms.Subscribe = slices.Clone(p.Perms.Subscribe)
	return &c
}

// Permissions says what a [Principal] may do. The zero value allows
// nothing.
//
// Publish and Subscribe hold topic prefixes: a topic is allowed when it
// starts with one of them, so "fleet." allows "fleet.x" and "fleet.x.y",
// and "*" allows every topic. A prefix is a plain string prefix, so
// "svc.a" also allows "svc.ab"; end a prefix with the topic separator to
// scope it. An empty prefix allows nothing, and "*" is special only on its
// own (there are no globs: write "fleet." rather than "fleet.*").
type Permissions struct {
	// Connect allows opening a session (TetherService.Connect).
	Connect bool
	// Admin allows every AdminService call.
	Admin bool
	// AdminRead allows the read-only admin views: tetherd's web console,
	// without its kick and drain actions. Admin implies it.
	AdminRead bool
	// Publish lists the topic prefixes the principal may send to.
	Publish []string
	// PublishDirect allows sending to a session id or a client id.
	PublishDirect bool
	// Subscribe lists the topic prefixes the principal may subscribe to.
	Subscribe []string
}

// CanPublishTopic reports whether topic matches one of the Publish
// prefixes.
func (p Permissions) CanPublishTopic(topic string) bool {
	return matchPrefix(p.Publish, topic)
}

// CanSubscribe reports whether topic matches one of the Subscribe
// prefixes.
func (p Permissions) CanSubscribe(topic string) bool {
	return matchPrefix(p.Subscribe, topic)
}

// CanPublish reports whether a message may be sent to the address: a
// topic by its Publish prefixes, a session or client id by PublishDirect.
// An address of an unknown kind is never allowed.
func (p Permissions) CanPublish(to broker.Address) bool {
	switch to.Kind {
	case broker.KindTopic:
		return p.CanPublishTopic(to.Name)
	case broker.KindSession, broker.KindClient:
		return p.PublishDirect
	}
	return false
}

// matchPrefix reports whether name starts with one of prefixes, "*"
// matching every name and "" matching none.
func matchPrefix(prefixes []string, name string) bool {
	for _, pre := range prefixes {
		if pre == "*" || (pre != "" && strings.HasPrefix(name, pre)) {
			return true
		}
	}
	return false
}

// contextKey is the context key of the principal; being unexported, no
// other package can set or read it except through this package.
type contextKey struct{}

// NewContext returns a child of ctx that carries p. A nil p is stored as
// is and counts as no principal.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, contextKey{}, p)
}

// FromContext returns the principal in ctx, if there is one.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, _ := ctx.Value(contextKey{}).(*Principal)
	return p, p != nil
}

// Name returns the name of the principal in ctx, or "" when there is none.
// Its signature fits server.WithPrincipal, which binds sessions to it:
//
//	server.New(server.WithPrincipal(auth.Name), ...)
func Name(ctx context.Context) string {
	if p, ok := FromContext(ctx); ok {
		return p.Name
	}
	return ""
}

// RateExempt reports whether the principal in ctx is exempt from the
// per-principal call rate limits (the token file's rate_exempt). Its
// signature fits interceptors.Config.RateExempt:
//
//	interceptors.Config{RateExempt: auth.RateExempt, ...}
func RateExempt(ctx context.Context) bool {
	p, ok := FromContext(ctx)
	return ok && p.RateExempt
}
