package loopback_test

import (
	"context"
	"testing"

	"github.com/tetherhq/tether/internal/loopback"
)

func TestAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7070":          true,
		"127.1.2.3:0":             true,
		"[::1]:7070":              true,
		"[::ffff:127.0.0.1]:7070": true,
		"localhost:7070":          true,
		"LocalHost:0":             true,
		":7070":                   false,
		"0.0.0.0:7070":            false,
		"[::]:7070":               false,
		"192.0.2.1:7070":          false,
		"[2001:db8::1]:7070":      false,
	} {
		got, err := loopback.Addr(context.Background(), addr)
		if err != nil || got != want {
			t.Errorf("loopback.Addr(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
	if _, err := loopback.Addr(context.Background(), "7070"); err == nil {
		t.Error("loopback.Addr(\"7070\") = nil error; want one for a missing port")
	}
}

func TestLiteral(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:7070":        true,
		"[::1]:7070":            true,
		"localhost:7070":        true,
		"tether.example:7070":   false,
		"10.0.0.1:7070":         false,
		"dns:///localhost:7070": false,
		"127.0.0.1":             false,
	} {
		if got := loopback.Literal(addr); got != want {
			t.Errorf("Literal(%q) = %v; want %v", addr, got, want)
		}
	}
}
