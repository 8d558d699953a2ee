package check

import (
	"strings"
	"testing"
)

// unit is a systemd unit file: each section's settings, in order (a key
// may repeat).
type unit map[string][][2]string

// parseUnit reads a unit file: [Section] lines, Key=Value lines, # and ;
// comments, blank lines. Anything else fails the test.
func parseUnit(t *testing.T, text string) unit {
	t.Helper()
	u := unit{}
	section := ""
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.TrimSpace(k) != k || k == "" {
				t.Errorf("tetherd.service:%d: %q is not Key=Value in a section", i+1, line)
				continue
			}
			u[section] = append(u[section], [2]string{k, v})
		}
	}
	return u
}

// get returns the last value of key in section ("" if unset).
func (u unit) get(section, key string) string {
	v := ""
	for _, kv := range u[section] {
		if kv[0] == key {
			v = kv[1]
		}
	}
	return v
}

// TestSystemdUnit checks deploy/systemd/tetherd.service: it runs tetherd
// with the example config as an unprivileged user, sandboxed, and gives
// the drain time to finish before systemd kills it.
func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, readFile(t, "deploy/systemd/tetherd.service"))
	if got := u.get("Service", "ExecStart"); got != "/usr/local/bin/tetherd --config /etc/tether/tetherd.conf" {
		t.Errorf("ExecStart=%s", got)
	}
	for key, want := range map[string]string{
		"User": "tether", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictNamespaces": "yes", "MemoryDenyWriteExecute": "yes",
		"LockPersonality": "yes", "SystemCallArchitectures": "native", "KillSignal": "SIGTERM", "RestartPreventExitStatus": "2",
		"ExecReload": "/bin/kill -HUP $MAINPID",
	} {
		if got := u.get("Service", key); got != want {
			t.Errorf("[Service] %s=%s; want %s", key, got, want)
		}
	}
	if u.get("Install", "WantedBy") != "multi-user.target" {
		t.Error("[Install] WantedBy=multi-user.target is missing")
	}
	drainGrace := duration(t, "drain-grace", printConfig(t, readFile(t, "deploy/tetherd.conf"), "--tls-cert=", "--tls-key=", "--tokens-file=", "--insecure")["drain-grace"])
	stop := duration(t, "TimeoutStopSec", u.get("Service", "TimeoutStopSec"))
	if stop <= drainGrace {
		t.Errorf("TimeoutStopSec=%v must exceed deploy/tetherd.conf's drain-grace %v, or systemd kills tetherd mid-drain", stop, drainGrace)
	}
}
