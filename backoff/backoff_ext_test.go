package backoff_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/backoff"
)

func TestDefaultConfig(t *testing.T) {
	t.Parallel()
	got := backoff.DefaultConfig()
	want := backoff.Config{Base: time.Second, Cap: 30 * time.Second, Multiplier: 2, ResetAfter: 5 * time.Second}
	if got != want {
		t.Fatalf("DefaultConfig() = %+v, want %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v, want nil", err)
	}
}

func TestDefaultConfigIsFresh(t *testing.T) {
	t.Parallel()
	a := backoff.DefaultConfig()
	a.Base, a.Cap, a.Multiplier, a.ResetAfter = 1, 1, 1, 0
	if b := backoff.DefaultConfig(); b == a {
		t.Fatal("changing one DefaultConfig() value changed the next one")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	modify := func(f func(*backoff.Config)) backoff.Config {
		c := backoff.DefaultConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  backoff.Config
		want []string // substrings of the error, one per bad field; nil for valid
	}{
		{"default", backoff.DefaultConfig(), nil},
		{"minimal", backoff.Config{Base: 1, Cap: 1, Multiplier: 1}, nil},
		{"cap equals base", modify(func(c *backoff.Config) { c.Cap = c.Base }), nil},
		{"multiplier one", modify(func(c *backoff.Config) { c.Multiplier = 1 }), nil},
		{"multiplier huge", modify(func(c *backoff.Config) { c.Multiplier = math.Inf(1) }), nil},
		{"reset after zero", modify(func(c *backoff.Config) { c.ResetAfter = 0 }), nil},
		{"cap max", modify(func(c *backoff.Config) { c.Cap = math.MaxInt64 }), nil},

		{"base zero", modify(func(c *backoff.Config) { c.Base = 0 }), []string{"Base is 0s; set it above zero"}},
		{"base negative", modify(func(c *backoff.Config) { c.Base = -time.Second }), []string{"Base is -1s; set it above zero"}},
		{"cap below base", modify(func(c *backoff.Config) { c.Cap = 500 * time.Millisecond }), []string{"Cap (500ms) is less than Base (1s); set Cap to at least Base"}},
		{"cap zero", modify(func(c *backoff.Config) { c.Cap = 0 }), []string{"Cap (0s) is less than Base (1s)"}},
		{"multiplier zero", modify(func(c *backoff.Config) { c.Multiplier = 0 }), []string{"Multiplier is 0; set it to 1 or more"}},
		{"multiplier below one", modify(func(c *backoff.Config) { c.Multiplier = 0.99 }), []string{"Multiplier is 0.99; set it to 1 or more"}},
		{"multiplier NaN", modify(func(c *backoff.Config) { c.Multiplier = math.NaN() }), []string{"Multiplier is NaN; set it to 1 or more"}},
		{"reset after negative", modify(func(c *backoff.Config) { c.ResetAfter = -time.Nanosecond }), []string{"ResetAfter is -1ns; set it to zero or more"}},
		{"zero value", backoff.Config{}, []string{"Base is 0s", "Multiplier is 0"}},
		{"all bad", backoff.Config{Base: -1, Cap: -2, Multiplier: -1, ResetAfter: -1}, []string{
			"Base is -1ns", "Cap (-2ns) is less than Base (-1ns)", "Multiplier is -1", "ResetAfter is -1ns",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", tt.cfg, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want an error mentioning %q", tt.cfg, tt.want)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Validate(%+v) = %q, want it to contain %q", tt.cfg, msg, w)
				}
			}
			if lines := strings.Count(msg, "\n") + 1; lines != len(tt.want) {
				t.Errorf("Validate(%+v) reported %d problems, want %d: %q", tt.cfg, lines, len(tt.want), msg)
			}
			for line := range strings.SplitSeq(msg, "\n") {
				if !strings.HasPrefix(line, "backoff: ") {
					t.Errorf("error line %q lacks the \"backoff: \" prefix", line)
				}
			}
		})
	}
}
