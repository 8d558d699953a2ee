package profile_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/profile"
)

func builtins() []profile.Profile {
	return []profile.Profile{profile.Datacenter(), profile.Default(), profile.Mobile()}
}

func TestBuiltinsValidate(t *testing.T) {
	t.Parallel()
	for _, p := range builtins() {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v, want nil", p.Name, err)
		}
	}
}

func TestNamesAndLookup(t *testing.T) {
	t.Parallel()
	want := []string{"datacenter", "default", "mobile"}
	if got := profile.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
	profile.Names()[0] = "changed"
	if got := profile.Names()[0]; got != "datacenter" {
		t.Fatalf("Names() shares its slice: after a caller's write, Names()[0] = %q", got)
	}
	for _, name := range want {
		p, err := profile.Lookup(name)
		if err != nil {
			t.Fatalf("Lookup(%q) error: %v", name, err)
		}
		if p.Name != name {
			t.Errorf("Lookup(%q).Name = %q", name, p.Name)
		}
	}
}

func TestLookupUnknown(t *testing.T) {
	t.Parallel()
	_, err := profile.Lookup("satellite")
	if !errors.Is(err, profile.ErrUnknownProfile) {
		t.Fatalf("Lookup(unknown) error = %v, want one wrapping ErrUnknownProfile", err)
	}
	const want = `profile: unknown profile "satellite" (valid: datacenter, default, mobile)`
	if err.Error() != want {
		t.Fatalf("Lookup(unknown) error = %q, want %q", err, want)
	}
}

func TestConstructorsReturnFreshValues(t *testing.T) {
	t.Parallel()
	p := profile.Default()
	p.Heartbeat.Interval = time.Hour
	p.Name = "changed"
	q, err := profile.Lookup("default")
	if err != nil {
		t.Fatal(err)
	}
	if q.Name != "default" || q.Heartbeat.Interval != 15*time.Second {
		t.Fatalf("a caller's edit leaked into a later Lookup: got %q with interval %v", q.Name, q.Heartbeat.Interval)
	}
}

func TestDerivedNumbers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p          profile.Profile
		detection  time.Duration
		perHour    float64
		safeAt30s  bool
		safeAt20s  bool
		safeAt15s  bool
		clientTime time.Duration
		minTime    time.Duration
	}{
		{profile.Datacenter(), 3500 * time.Millisecond, 3600, true, true, true, 10 * time.Second, 5 * time.Second},
		{profile.Default(), 50 * time.Second, 240, true, true, false, 30 * time.Second, 10 * time.Second},
		{profile.Mobile(), 85 * time.Second, 144, true, false, false, time.Minute, 10 * time.Second},
	}
	for _, tt := range tests {
		p := tt.p
		if got := p.DetectionTime(); got != tt.detection {
			t.Errorf("%s: DetectionTime() = %v, want %v", p.Name, got, tt.detection)
		}
		if got := p.HeartbeatsPerHour(); got != tt.perHour {
			t.Errorf("%s: HeartbeatsPerHour() = %v, want %v", p.Name, got, tt.perHour)
		}
		for _, c := range []struct {
			idle time.Duration
			want bool
		}{{profile.CommonNATIdle, tt.safeAt30s}, {20 * time.Second, tt.safeAt20s}, {15 * time.Second, tt.safeAt15s}} {
			if got := p.NATSafe(c.idle); got != c.want {
				t.Errorf("%s: NATSafe(%v) = %v, want %v", p.Name, c.idle, got, c.want)
			}
		}
		if p.Client.Time != tt.clientTime || p.Enforcement.MinTime != tt.minTime {
			t.Errorf("%s: Client.Time %v, MinTime %v; want %v, %v", p.Name, p.Client.Time, p.Enforcement.MinTime, tt.clientTime, tt.minTime)
		}
		if got, want := p.RTTDetectionTime(0, 0), p.Heartbeat.Interval+p.Heartbeat.RTTFloor; got != want {
			t.Errorf("%s: RTTDetectionTime(0, 0) = %v, want interval + floor, %v", p.Name, got, want)
		}
		if got := p.RTTDetectionTime(time.Hour, 0); got != p.DetectionTime() {
			t.Errorf("%s: RTTDetectionTime(1h, 0) = %v, want the fixed bound %v", p.Name, got, p.DetectionTime())
		}
		tcp := p.TCP.Idle + p.TCP.Interval*time.Duration(p.TCP.Count)
		if diff := tcp - p.DetectionTime(); diff < -time.Second || diff > time.Second {
			t.Errorf("%s: TCP keepalive detects in %v, heartbeat in %v: keep them within 1s", p.Name, tcp, p.DetectionTime())
		}
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	for _, p := range builtins() {
		if n := len(p.ServerOptions()); n != 2 {
			t.Errorf("%s: %d server options, want 2 (keepalive params, enforcement policy)", p.Name, n)
		}
		if n := len(p.DialOptions()); n != 1 {
			t.Errorf("%s: %d dial options, want 1 (keepalive params)", p.Name, n)
		}
		lc, d := p.ListenConfig(), p.Dialer()
		if lc.KeepAliveConfig != p.TCP || d.KeepAliveConfig != p.TCP {
			t.Errorf("%s: ListenConfig/Dialer keepalive = %+v / %+v, want %+v", p.Name, lc.KeepAliveConfig, d.KeepAliveConfig, p.TCP)
		}
	}
}

func TestDisabledTCPKeepaliveIsOff(t *testing.T) {
	t.Parallel()
	p := profile.Default()
	p.TCP.Enable = false
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate() with TCP keepalive disabled = %v, want nil", err)
	}
	if lc, d := p.ListenConfig(), p.Dialer(); lc.KeepAlive >= 0 || d.KeepAlive >= 0 {
		t.Fatalf("disabled TCP keepalive: KeepAlive = %v / %v, want negative (zero would mean Go's 15s default)", lc.KeepAlive, d.KeepAlive)
	}
}

func TestValidateCatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		base   func() profile.Profile
		change func(*profile.Profile)
		want   string // a substring of the error
	}{
		{"empty name", profile.Default, func(p *profile.Profile) { p.Name = "" }, "Name is empty"},
		{"no misses", profile.Default, func(p *profile.Profile) { p.Heartbeat.Misses = 0 }, "Heartbeat.Misses is 0: set it to 1 or more"},
		{"negative grace", profile.Default, func(p *profile.Profile) { p.Heartbeat.Grace = -time.Second }, "Heartbeat.Grace is -1s"},
		{"zero min", profile.Default, func(p *profile.Profile) { p.Heartbeat.Min = 0 }, "Heartbeat.Min is 0s"},
		{"max below min", profile.Default, func(p *profile.Profile) { p.Heartbeat.Max = time.Second }, "Heartbeat.Max 1s is below Heartbeat.Min 5s"},
		{"interval below min", profile.Default, func(p *profile.Profile) { p.Heartbeat.Interval = time.Second }, "Heartbeat.Interval 1s is outside [Min 5s, Max 5m0s]"},
		{"interval above max", profile.Default, func(p *profile.Profile) { p.Heartbeat.Interval = 6 * time.Minute }, "Heartbeat.Interval 6m0s is outside"},
		{"min time unset", profile.Default, func(p *profile.Profile) { p.Enforcement.MinTime = 0 }, "Enforcement.MinTime is 0s: set it explicitly"},
		{"client time below floor", profile.Datacenter, func(p *profile.Profile) { p.Client.Time = 5 * time.Second }, "Client.Time is 5s: set it to 10s or more"},
		{"client time zero", profile.Default, func(p *profile.Profile) { p.Client.Time = 0 }, "zero means 10s pings, not off"},
		{"too many pings", profile.Default, func(p *profile.Profile) { p.Enforcement.MinTime = 20 * time.Second },
			"Client.Time 30s is less than twice Enforcement.MinTime 20s, risking too_many_pings: raise Client.Time to 40s or lower MinTime to 15s"},
		{"pings without stream refused", profile.Default, func(p *profile.Profile) { p.Enforcement.PermitWithoutStream = false },
			"set Enforcement.PermitWithoutStream or clear Client.PermitWithoutStream"},
		{"client timeout unset", profile.Default, func(p *profile.Profile) { p.Client.Timeout = 0 }, "Client.Timeout is 0s: set it explicitly"},
		{"server time unset", profile.Default, func(p *profile.Profile) { p.Server.Time = 0 }, "Server.Time is 0s: set it to 1s or more"},
		{"server timeout unset", profile.Default, func(p *profile.Profile) { p.Server.Timeout = 0 }, "Server.Timeout is 0s: set it explicitly"},
		{"client pings on healthy sessions", profile.Mobile, func(p *profile.Profile) { p.Client.Time = 20 * time.Second },
			"Client.Time 20s is not above Heartbeat.Interval 25s"},
		{"server pings on healthy sessions", profile.Default, func(p *profile.Profile) { p.Server.Time = 15 * time.Second },
			"Server.Time 15s is not above Heartbeat.Interval 15s"},
		{"negative idle", profile.Default, func(p *profile.Profile) { p.Server.MaxConnectionIdle = -time.Second }, "Server.MaxConnectionIdle is -1s"},
		{"infinite age grace", profile.Default, func(p *profile.Profile) { p.Server.MaxConnectionAgeGrace = 0 }, "set a finite grace"},
		{"tcp idle go default", profile.Default, func(p *profile.Profile) { p.TCP.Idle = 0 }, "TCP.Idle is 0s: set a whole number of seconds"},
		{"tcp idle os default", profile.Default, func(p *profile.Profile) { p.TCP.Idle = -1 }, "TCP.Idle is -1ns"},
		{"tcp interval fraction", profile.Default, func(p *profile.Profile) { p.TCP.Interval = 1500 * time.Millisecond }, "TCP.Interval is 1.5s"},
		{"tcp count", profile.Default, func(p *profile.Profile) { p.TCP.Count = 0 }, "TCP.Count is 0: set it to 1 or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := tt.base()
			tt.change(&p)
			err := p.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %q, want it to contain %q", err, tt.want)
			}
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if prefix := `profile "` + p.Name + `": `; !strings.HasPrefix(line, prefix) {
					t.Errorf("error line %q does not start with %q", line, prefix)
				}
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	err := profile.Profile{}.Validate()
	if err == nil {
		t.Fatal("zero Profile: Validate() = nil")
	}
	for _, field := range []string{"Name", "Heartbeat.Misses", "Heartbeat.Min", "Enforcement.MinTime", "Client.Time", "Client.Timeout", "Server.Time", "Server.Timeout"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("zero Profile: error does not mention %s:\n%v", field, err)
		}
	}
}

func TestValidateAllowsOptionalLimits(t *testing.T) {
	t.Parallel()
	p := profile.Default()
	p.Server.MaxConnectionIdle, p.Server.MaxConnectionAge, p.Server.MaxConnectionAgeGrace = 0, 0, 0
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate() without connection idle/age limits = %v, want nil", err)
	}
}

func TestTableRowsFollowArguments(t *testing.T) {
	t.Parallel()
	got := profile.Table(profile.Mobile(), profile.Datacenter())
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("Table of two profiles has %d lines, want 4:\n%s", len(lines), got)
	}
	if !strings.HasPrefix(lines[2], "| mobile |") || !strings.HasPrefix(lines[3], "| datacenter |") {
		t.Fatalf("rows out of argument order:\n%s", got)
	}
	if got != profile.Table(profile.Mobile(), profile.Datacenter()) {
		t.Fatal("Table is not deterministic")
	}
}
