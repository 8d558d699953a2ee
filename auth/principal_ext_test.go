package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/tetherhq/tether/auth"
	"github.com/tetherhq/tether/broker"
)

func TestPermissionsPrefixMatching(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		prefixes []string
		topic    string
		want     bool
	}{
		{"none", nil, "fleet.x", false},
		{"empty list", []string{}, "fleet.x", false},
		{"star", []string{"*"}, "anything.at.all", true},
		{"star matches empty topic", []string{"*"}, "", true},
		{"prefix", []string{"fleet."}, "fleet.x", true},
		{"prefix deep", []string{"fleet."}, "fleet.x.y", true},
		{"prefix equals topic", []string{"fleet."}, "fleet.", true},
		{"prefix without separator", []string{"fleet."}, "fleet", false},
		{"other topic", []string{"fleet."}, "fleetx", false},
		{"case sensitive", []string{"fleet."}, "Fleet.x", false},
		{"plain string prefix", []string{"svc.a"}, "svc.ab", true},
		{"exact", []string{"svc.a"}, "svc.a", true},
		{"second prefix", []string{"a.", "b."}, "b.1", true},
		{"empty prefix matches nothing", []string{""}, "x", false},
		{"empty prefix, empty topic", []string{""}, "", false},
		{"star is not a glob", []string{"fleet.*"}, "fleet.x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pub := auth.Permissions{Publish: tc.prefixes}
			if got := pub.CanPublishTopic(tc.topic); got != tc.want {
				t.Errorf("CanPublishTopic(%q) with %q = %v, want %v", tc.topic, tc.prefixes, got, tc.want)
			}
			if got := pub.CanPublish(broker.Topic(tc.topic)); got != tc.want {
				t.Errorf("CanPublish(topic %q) with %q = %v, want %v", tc.topic, tc.prefixes, got, tc.want)
			}
			if pub.CanSubscribe(tc.topic) {
				t.Errorf("Publish prefixes allowed subscribing to %q", tc.topic)
			}
			sub := auth.Permissions{Subscribe: tc.prefixes}
			if got := sub.CanSubscribe(tc.topic); got != tc.want {
				t.Errorf("CanSubscribe(%q) with %q = %v, want %v", tc.topic, tc.prefixes, got, tc.want)
			}
			if sub.CanPublishTopic(tc.topic) {
				t.Errorf("Subscribe prefixes allowed publishing to %q", tc.topic)
			}
		})
	}
}

func TestPermissionsCanPublishDirect(t *testing.T) {
	t.Parallel()
	direct := auth.Permissions{PublishDirect: true}
	topics := auth.Permissions{Publish: []string{"*"}}
	for _, to := range []broker.Address{broker.Session("s1"), broker.Client("c1")} {
		if !direct.CanPublish(to) {
			t.Errorf("PublishDirect: CanPublish(%v) = false", to)
		}
		if topics.CanPublish(to) {
			t.Errorf(`Publish ["*"] without PublishDirect: CanPublish(%v) = true`, to)
		}
	}
	if direct.CanPublish(broker.Topic("t")) {
		t.Error("PublishDirect allowed a topic")
	}
	all := auth.Permissions{Publish: []string{"*"}, PublishDirect: true}
	if all.CanPublish(broker.Address{Kind: 0, Name: "x"}) {
		t.Error("CanPublish allowed an address of unknown kind")
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if p, ok := auth.FromContext(ctx); ok || p != nil {
		t.Errorf("FromContext(empty) = %v, %v", p, ok)
	}
	if got := auth.Name(ctx); got != "" {
		t.Errorf("Name(empty) = %q", got)
	}
	if _, ok := auth.FromContext(auth.NewContext(ctx, nil)); ok {
		t.Error("a nil principal counts as a principal")
	}
	p := &auth.Principal{Name: "svc-a"}
	ctx = auth.NewContext(ctx, p)
	if got, ok := auth.FromContext(ctx); !ok || got != p {
		t.Errorf("FromContext = %v, %v; want %v", got, ok, p)
	}
	if got := auth.Name(ctx); got != "svc-a" {
		t.Errorf("Name = %q, want svc-a", got)
	}
}

func TestPrincipalExpired(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		expires time.Time
		want    bool
	}{
		{time.Time{}, false},
		{now.Add(time.Second), false},
		{now, true},
		{now.Add(-time.Second), true},
	}
	for _, tc := range tests {
		p := auth.Principal{Expires: tc.expires}
		if got := p.Expired(now); got != tc.want {
			t.Errorf("Expires %v: Expired(%v) = %v, want %v", tc.expires, now, got, tc.want)
		}
	}
}
