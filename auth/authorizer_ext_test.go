package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/auth"
	"github.com/tetherhq/tether/broker"
)

func TestAuthorizerDecisions(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	a := auth.Authorizer{Now: func() time.Time { return now }}
	svc := &auth.Principal{Name: "svc-a", Expires: now.Add(time.Hour), Perms: auth.Permissions{
		Connect: true, Publish: []string{"fleet."}, PublishDirect: true, Subscribe: []string{"svc.a."},
	}}
	ops := &auth.Principal{Name: "ops", Perms: auth.Permissions{Admin: true}}
	expired := &auth.Principal{Name: "old", Expires: now, Perms: auth.Permissions{
		Connect: true, Admin: true, Publish: []string{"*"}, PublishDirect: true, Subscribe: []string{"*"},
	}}

	type decision struct {
		name string
		call func(context.Context) error
		// want is codes.OK or the code, and msg the parts of its message.
		want codes.Code
		msg  []string
	}
	connect := func(ctx context.Context) error { return a.Connect(ctx) }
	admin := func(ctx context.Context) error { return a.Admin(ctx) }
	sub := func(topic string) func(context.Context) error {
		return func(ctx context.Context) error { return a.Subscribe(ctx, topic) }
	}
	pub := func(to broker.Address) func(context.Context) error {
		return func(ctx context.Context) error { return a.Publish(ctx, to) }
	}
	tests := []struct {
		principal *auth.Principal
		decisions []decision
	}{
		{svc, []decision{
			{"connect", connect, codes.OK, nil},
			{"admin", admin, codes.PermissionDenied, []string{`"svc-a"`, `"admin"`}},
			{"subscribe own", sub("svc.a.events"), codes.OK, nil},
			{"subscribe other", sub("svc.b.events"), codes.PermissionDenied, []string{`"svc-a"`, `"subscribe"`, `"svc.b.events"`}},
			{"publish fleet", pub(broker.Topic("fleet.x")), codes.OK, nil},
			{"publish other", pub(broker.Topic("billing.x")), codes.PermissionDenied, []string{`"svc-a"`, `"publish"`, `"billing.x"`}},
			{"publish session", pub(broker.Session("s1")), codes.OK, nil},
			{"publish client", pub(broker.Client("c1")), codes.OK, nil},
			{"publish unknown kind", pub(broker.Address{Name: "x"}), codes.PermissionDenied, []string{`"svc-a"`, "kind 0"}},
		}},
		{ops, []decision{
			{"connect", connect, codes.PermissionDenied, []string{`principal "ops" lacks permission "connect"`}},
			{"admin", admin, codes.OK, nil},
			{"subscribe", sub("svc.a.events"), codes.PermissionDenied, []string{`"ops"`, `"subscribe"`}},
			{"publish topic", pub(broker.Topic("fleet.x")), codes.PermissionDenied, []string{`"ops"`, `"publish"`}},
			{"publish session", pub(broker.Session("s1")), codes.PermissionDenied, []string{`"ops"`, `"publish_direct"`, "session"}},
			{"publish client", pub(broker.Client("c1")), codes.PermissionDenied, []string{`"ops"`, `"publish_direct"`, "client"}},
		}},
		{expired, []decision{
			{"connect", connect, codes.Unauthenticated, []string{`"old"`, "expired", "2030-01-01T00:00:00Z"}},
			{"admin", admin, codes.Unauthenticated, []string{"expired"}},
			{"subscribe", sub("x"), codes.Unauthenticated, []string{"expired"}},
			{"publish", pub(broker.Topic("x")), codes.Unauthenticated, []string{"expired"}},
		}},
		{nil, []decision{
			{"connect", connect, codes.Unauthenticated, []string{"no credentials: send authorization: bearer TOKEN"}},
			{"admin", admin, codes.Unauthenticated, []string{"no credentials"}},
			{"subscribe", sub("x"), codes.Unauthenticated, []string{"no credentials"}},
			{"publish", pub(broker.Session("s1")), codes.Unauthenticated, []string{"no credentials"}},
		}},
	}
	for _, tc := range tests {
		ctx := context.Background()
		who := "none"
		if tc.principal != nil {
			ctx = auth.NewContext(ctx, tc.principal)
			who = tc.principal.Name
		}
		for _, d := range tc.decisions {
			t.Run(who+"/"+d.name, func(t *testing.T) {
				t.Parallel()
				err := d.call(ctx)
				if d.want == codes.OK {
					if err != nil {
						t.Fatalf("err = %v, want nil", err)
					}
					return
				}
				wantCode(t, err, d.want, d.msg...)
			})
		}
	}
}

func TestAuthorizerExpires(t *testing.T) {
	t.Parallel()
	var a auth.Authorizer
	if got := a.Expires(context.Background()); !got.IsZero() {
		t.Errorf("Expires(no principal) = %v, want zero", got)
	}
	if got := a.Expires(auth.NewContext(context.Background(), &auth.Principal{Name: "p"})); !got.IsZero() {
		t.Errorf("Expires(principal without expiry) = %v, want zero", got)
	}
	at := time.Now().Add(time.Hour)
	if got := a.Expires(auth.NewContext(context.Background(), &auth.Principal{Name: "p", Expires: at})); !got.Equal(at) {
		t.Errorf("Expires = %v, want %v", got, at)
	}
}

// TestAuthorizerRealClock checks the zero Authorizer against the clock:
// credentials that expired a moment ago are refused.
func TestAuthorizerRealClock(t *testing.T) {
	t.Parallel()
	var a auth.Authorizer
	p := &auth.Principal{Name: "p", Perms: auth.Permissions{Connect: true}}
	ctx := auth.NewContext(context.Background(), p)
	if err := a.Connect(ctx); err != nil {
		t.Fatalf("Connect = %v", err)
	}
	p2 := *p
	p2.Expires = time.Now().Add(-time.Millisecond)
	err := a.Connect(auth.NewContext(context.Background(), &p2))
	wantCode(t, err, codes.Unauthenticated, "expired")
	if st, _ := status.FromError(err); strings.Contains(st.Message(), "TOKEN") {
		t.Errorf("an expiry error asks for a token: %q", st.Message())
	}
}
