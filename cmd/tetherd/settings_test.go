package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Config errors name the file and line (and column, for JSON syntax), the
// setting, the bad value and what was expected; environment errors name
// the variable.
func TestConfigErrorsSayWhere(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		writeFile(t, path, content)
		return path
	}
	plain := file("plain.conf", "# a comment\nlisten 127.0.0.1:0\nmax-sessions abc\n")
	trailing := file("trailing.json", "{\n  \"listen\": \"127.0.0.1:0\",\n  \"max-sessions\": 5,\n}\n")
	badJSONValue := file("value.json", "{\"listen\": \"127.0.0.1:0\",\n\"drain-grace\": 30}\n")
	object := file("object.json", "{\"listen\": {\"host\": \"x\"}}")
	unknown := file("unknown.conf", "\n\nlisten-on 127.0.0.1:7070\n")
	quote := file("quote.conf", "server-id \"edge-1\n")
	profile := file("profile.conf", "profile warp\n")
	for _, tc := range []struct {
		name string
		env  string // NAME=value, or empty
		args []string
		want string // in stderr
	}{
		{"plain file", "", []string{"--config", plain}, plain + `:3: max-sessions "abc": want an integer, such as 1000`},
		{"JSON trailing comma", "", []string{"--config", trailing}, trailing + ":4:1: not valid JSON: invalid character '}'"},
		{"JSON value", "", []string{"--config", badJSONValue}, badJSONValue + `:2: drain-grace "30": want a duration, such as 30s, 2m or 1h30m`},
		{"JSON object", "", []string{"--config", object}, object + ":1: listen: want a string, a number, a boolean or an array of them"},
		{"unknown setting", "", []string{"--config", unknown}, unknown + `:3: unknown setting "listen-on"`},
		{"unclosed quote", "", []string{"--config", quote}, quote + `:1: server-id "edge-1: want a value in double quotes`},
		{"check of a file setting", "", []string{"--config", profile}, profile + `:1: profile: profile: unknown profile "warp"`},
		{"environment value", "TETHER_DRAIN_RATE=fast", nil, `TETHER_DRAIN_RATE="fast" (the environment variable for --drain-rate): want a number`},
		{"check of an environment setting", "TETHER_PROFILE=warp", nil, `TETHER_PROFILE (--profile): profile: unknown profile "warp"`},
		{"environment listen", "TETHER_LISTEN=0.0.0.0:7070", nil, `TETHER_LISTEN (--listen) 0.0.0.0:7070 is not a loopback address`},
		{"flag", "", []string{"--max-sessions", "many"}, `invalid value "many" for flag -max-sessions: want an integer`},
		{"boolean flag", "", []string{"--insecure=maybe"}, `invalid boolean value "maybe" for -insecure: want true or false`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if k, v, ok := strings.Cut(tc.env, "="); ok {
				t.Setenv(k, v)
			}
			stderr := newOutput()
			err := run(context.Background(), tc.args, &bytes.Buffer{}, stderr)
			if code := exitCode(err); code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit status %d, stderr:\n%s\nwant 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

// printConfig runs tetherd --print-config with args and returns stdout.
func printConfig(t *testing.T, args ...string) string {
	t.Helper()
	var stdout bytes.Buffer
	stderr := newOutput()
	if err := run(context.Background(), append(args, "--print-config"), &stdout, stderr); err != nil {
		t.Fatalf("--print-config %v: %v\n%s", args, err, stderr)
	}
	return stdout.String()
}

// --print-config prints every setting, secrets redacted, in the config
// file format: read back, it gives the same settings.
func TestPrintConfig(t *testing.T) {
	clearEnv(t)
	t.Setenv("TETHER_NATS_TOKEN", "s3cret")
	out := printConfig(t, "--server-id", "edge 1", "--admin-listen", "", "--drain-grace", "45s")
	for _, want := range []string{"\nserver-id \"edge 1\"\n", "\nadmin-listen \"\"\n", "\ndrain-grace 45s\n", "\nnats-token REDACTED\n", "\nnats-password \"\"\n", "\nprofile default\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret") || strings.Contains(out, "print-config") || strings.Contains(out, "\nversion") {
		t.Errorf("--print-config shows a secret, or itself or --version:\n%s", out)
	}
	path := filepath.Join(t.TempDir(), "printed.conf")
	writeFile(t, path, out)
	if again := printConfig(t, "--config", path); again != out {
		t.Errorf("read back, the printed settings differ:\n%s\nwant\n%s", again, out)
	}
}

// deploy/tetherd.conf, the annotated example, loads; its file paths are
// replaced by flags, which win over the file.
func TestExampleConfig(t *testing.T) {
	clearEnv(t)
	certFile, keyFile, _ := writeCert(t)
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	writeFile(t, tokens, `{"principals":[]}`)
	c, err := parseConfig(context.Background(), []string{"--config", filepath.Join("..", "..", "deploy", "tetherd.conf"),
		"--tls-cert", certFile, "--tls-key", keyFile, "--tokens-file", tokens})
	if err != nil {
		t.Fatalf("deploy/tetherd.conf: %v", err)
	}
	want := config{listen: "0.0.0.0:7070", adminListen: "0.0.0.0:9090", logFormat: "json", broker: "memory", drainGrace: c.drainGrace}
	got := config{listen: c.listen, adminListen: c.adminListen, logFormat: c.logFormat, broker: c.broker, drainGrace: c.drainGrace}
	if !reflect.DeepEqual(got, want) || c.tls == nil || c.from["max-message-bytes"] == "" {
		t.Errorf("deploy/tetherd.conf gave %+v (TLS %v, sources %v); want %+v", got, c.tls != nil, c.from, want)
	}
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "tetherd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// Every setting in the file is explained by a comment before it.
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		if line != "" && !strings.HasPrefix(line, "#") && (i == 0 || lines[i-1] == "") {
			t.Errorf("deploy/tetherd.conf:%d: %q has no comment above it", i+1, line)
		}
	}
}

// The plain format: comments, quotes, a name alone, tabs.
func TestPlainConfig(t *testing.T) {
	t.Parallel()
	data := "# comment\n\nserver-id \"a # b\" # a comment with a \"quote\"\ninsecure\nprofile\tmobile   # after a tab\nadmin-listen \"\"\n--log-format json\n"
	got := map[string]string{}
	lines := map[string]int{}
	err := parsePlainConfig("x.conf", []byte(data), func(line int, name, value string) error {
		got[name], lines[name] = value, line
		return nil
	})
	want := map[string]string{"server-id": "a # b", "insecure": "true", "profile": "mobile", "admin-listen": "", "log-format": "json"}
	if err != nil || !reflect.DeepEqual(got, want) || lines["server-id"] != 3 || lines["log-format"] != 7 {
		t.Errorf("parsePlainConfig = %v, %v (lines %v); want %v", got, err, lines, want)
	}
}

func TestVersion(t *testing.T) {
	clearEnv(t)
	var stdout bytes.Buffer
	stderr := newOutput()
	if err := run(context.Background(), []string{"--version"}, &stdout, stderr); err != nil || !strings.HasPrefix(stdout.String(), "tetherd (devel) (commit ") {
		t.Errorf("--version: %v, stdout %q, stderr %q", err, stdout.String(), stderr)
	}
}
