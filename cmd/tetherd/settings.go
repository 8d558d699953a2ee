package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// secretFlags are the settings --print-config and the start log redact.
var secretFlags = map[string]bool{"nats-password": true, "nats-token": true}

// redacted stands for a secret's value.
const redacted = "REDACTED"

// loadSettings sets fs from args, then the TETHER_ environment for the
// flags args did not set, then the --config file for the rest. It returns
// where each setting not from args came from: an environment variable's
// name or "file:line". Every error names the flag, the variable or the
// file and line, the bad value and what was expected.
func loadSettings(fs *flag.FlagSet, args []string) (map[string]string, error) {
	fs.VisitAll(func(f *flag.Flag) { f.Value = checked(f.Value) })
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	from := map[string]string{}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		key := envName(f.Name)
		v := os.Getenv(key)
		if err != nil || set[f.Name] || v == "" {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = usagef("%s=%q (the environment variable for --%s): %v", key, v, f.Name, e)
			return
		}
		set[f.Name], from[f.Name] = true, key
	})
	if err != nil {
		return nil, err
	}
	path := fs.Lookup("config").Value.String()
	if path == "" {
		return from, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--config: %w", err)
	}
	setFromFile := func(line int, name, value string) error {
		where := fmt.Sprintf("%s:%d", path, line)
		f := fs.Lookup(name)
		switch {
		case f == nil || name == "config" || name == "version" || name == "print-config":
			return usagef("%s: unknown setting %q: the settings are tetherd's flag names without dashes (see tetherd -h)", where, name)
		case set[name]:
			return nil // a flag or the environment set it
		}
		if err := fs.Set(name, value); err != nil {
			return usagef("%s: %s %q: %v", where, name, value, err)
		}
		set[name], from[name] = true, where
		return nil
	}
	if first := bytes.TrimLeft(data, " \t\r\n"); len(first) > 0 && first[0] == '{' {
		return from, parseJSONConfig(path, data, setFromFile)
	}
	return from, parsePlainConfig(path, data, setFromFile)
}

// parsePlainConfig reads "name value" lines: # starts a comment (at the
// start of a line, or after white space), a name alone means true, and a
// value in double quotes is unquoted as in Go ("" is empty).
func parsePlainConfig(path string, data []byte, set func(line int, name, value string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '\t'); i >= 0 {
			name, value, ok = line[:i], line[i+1:], true
		}
		if !ok {
			value = "true"
		}
		value = strings.TrimSpace(value)
		if strings.HasPrefix(value, `"`) {
			q, err := strconv.QuotedPrefix(value)
			rest := strings.TrimSpace(value[len(q):])
			if err != nil || rest != "" && !strings.HasPrefix(rest, "#") {
				return usagef("%s:%d: %s %s: want a value in double quotes, as in Go (\"\" for empty), then at most a # comment", path, n, name, value)
			}
			value, _ = strconv.Unquote(q) // QuotedPrefix checked it
		} else if i := strings.Index(value, " #"); i >= 0 {
			value = strings.TrimSpace(value[:i])
		} else if i := strings.Index(value, "\t#"); i >= 0 {
			value = strings.TrimSpace(value[:i])
		}
		if err := set(n, strings.TrimPrefix(strings.TrimPrefix(name, "-"), "-"), value); err != nil {
			return err
		}
	}
	return sc.Err()
}

// parseJSONConfig reads a JSON object of settings: strings, numbers,
// booleans, or arrays of them (each element set in turn).
func parseJSONConfig(path string, data []byte, set func(line int, name, value string) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(off, int64(len(data)))], []byte("\n")) }
	syntax := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := lineAt(se.Offset)
			col := se.Offset - int64(bytes.LastIndexByte(data[:se.Offset], '\n'))
			return usagef("%s:%d:%d: not valid JSON: %v", path, line, col, err)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return usagef("%s: not valid JSON: the object is not closed", path)
		}
		return usagef("%s:%d: not valid JSON: %v", path, lineAt(dec.InputOffset()), err)
	}
	if _, err := dec.Token(); err != nil { // the opening {
		return syntax(err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntax(err)
		}
		name, _ := tok.(string) // keys are strings
		line := lineAt(dec.InputOffset())
		values, err := jsonValues(dec)
		if err != nil {
			return usagef("%s:%d: %s: %v", path, line, name, err)
		}
		for _, v := range values {
			if err := set(line, name, v); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing }
		return syntax(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return usagef("%s:%d: not valid JSON: more after the object", path, lineAt(dec.InputOffset()))
	}
	return nil
}

// jsonValues reads one setting's value: a scalar, or an array of them.
func jsonValues(dec *json.Decoder) ([]string, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); ok && d == '[' {
		var vs []string
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := jsonScalar(tok)
			if err != nil {
				return nil, err
			}
			vs = append(vs, v)
		}
		_, err := dec.Token() // the closing ]
		return vs, err
	}
	v, err := jsonScalar(tok)
	return []string{v}, err
}

func jsonScalar(tok json.Token) (string, error) {
	switch v := tok.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	case nil:
		return "", nil
	}
	return "", errors.New("want a string, a number, a boolean or an array of them, not an object")
}

// checkedValue is a flag value whose Set errors say what was expected.
type checkedValue struct {
	flag.Value
	want string
}

func (v checkedValue) Set(s string) error {
	if err := v.Value.Set(s); err != nil {
		return fmt.Errorf("want %s", v.want)
	}
	return nil
}

// checkedBool is a checkedValue of a boolean flag, which needs no value
// on the command line.
type checkedBool struct{ checkedValue }

func (checkedBool) IsBoolFlag() bool { return true }

// checked wraps v so that its Set errors name the expected type.
func checked(v flag.Value) flag.Value {
	g, ok := v.(flag.Getter)
	if !ok {
		return v
	}
	switch g.Get().(type) {
	case bool:
		return checkedBool{checkedValue{v, "true or false"}}
	case int:
		return checkedValue{v, "an integer, such as 1000"}
	case float64:
		return checkedValue{v, "a number, such as 50 or 0.5"}
	case time.Duration:
		return checkedValue{v, "a duration, such as 30s, 2m or 1h30m"}
	case *slog.Level:
		return checkedValue{v, "a level: debug, info, warn or error"}
	}
	return v
}

// describe names a setting in an error: the flag, or the environment
// variable or file line it came from.
func describe(from map[string]string, name string) string {
	where, ok := from[name]
	switch {
	case !ok:
		return "--" + name
	case strings.HasPrefix(where, envPrefix+"_"):
		return where + " (--" + name + ")"
	default:
		return where + ": " + name
	}
}

// effectiveSettings lists every setting but --config with its value,
// secrets redacted, in the order of tetherd -h.
func effectiveSettings(fs *flag.FlagSet) [][2]string {
	var out [][2]string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || f.Name == "version" || f.Name == "print-config" {
			return
		}
		v := f.Value.String()
		if secretFlags[f.Name] && v != "" {
			v = redacted
		}
		out = append(out, [2]string{f.Name, v})
	})
	return out
}

// writeConfig writes settings in the plain config file format, so that
// the output can be read back with --config.
func writeConfig(w io.Writer, settings [][2]string) error {
	var b strings.Builder
	b.WriteString("# tetherd's effective configuration (flags, then TETHER_ variables, then --config, then defaults); secrets redacted\n")
	for _, s := range settings {
		v := s[1]
		if v == "" || strings.ContainsAny(v, " \t#\"") {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, "%s %s\n", s[0], v)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
