package broker_test

import (
	"testing"

	"github.com/tetherhq/tether/broker"
)

func TestAddress(t *testing.T) {
	for _, tc := range []struct {
		addr broker.Address
		kind string
	}{
		{broker.Topic("n"), "topic"},
		{broker.Session("n"), "session"},
		{broker.Client("n"), "client"},
		{broker.Address{Name: "n"}, "unknown"},
	} {
		if got := tc.addr.Kind.String(); got != tc.kind || tc.addr.Name != "n" {
			t.Errorf("%#v has kind %q and name %q, want %q and %q", tc.addr, got, tc.addr.Name, tc.kind, "n")
		}
	}
}
