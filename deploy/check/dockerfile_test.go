package check

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// instruction is one Dockerfile instruction: its keyword in lower case
// and its arguments as the parser split them.
type instruction struct {
	keyword string
	args    []string
	flags   []string
	line    int
}

// stage is a FROM and the instructions after it.
type stage struct {
	from         instruction
	instructions []instruction
}

// parseDockerfile parses the repository's Dockerfile with BuildKit's
// parser and splits it into stages.
func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile:%d: %s", w.Location.Start.Line, w.Short)
	}
	var stages []stage
	for _, n := range res.AST.Children {
		in := instruction{keyword: strings.ToLower(n.Value), flags: n.Flags, line: n.StartLine}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		switch {
		case in.keyword == "from":
			stages = append(stages, stage{from: in})
		case len(stages) > 0:
			stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
		}
	}
	return stages
}

// find returns the stage's instructions with keyword.
func (s stage) find(keyword string) []instruction {
	var out []instruction
	for _, in := range s.instructions {
		if in.keyword == keyword {
			out = append(out, in)
		}
	}
	return out
}

// TestDockerfile checks the image's shape: a Go build stage, then a
// distroless static base running as non-root, with a HEALTHCHECK and
// tetherd as the entry point; every file it copies from the context exists.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) != 2 {
		t.Fatalf("Dockerfile has %d stages; want 2 (build, run)", len(stages))
	}
	build, final := stages[0], stages[1]
	if got := strings.Join(build.from.args, " "); got != "golang:${GO_VERSION} AS build" {
		t.Errorf("build stage FROM %s; want golang:${GO_VERSION} AS build", got)
	}
	if got := final.from.args[0]; !strings.HasPrefix(got, "gcr.io/distroless/static") || !strings.HasSuffix(got, ":nonroot") {
		t.Errorf("final stage FROM %s; want a distroless static nonroot image", got)
	}
	if u := final.find("user"); len(u) != 1 || strings.HasPrefix(u[0].args[0], "root") || u[0].args[0] == "0" {
		t.Errorf("final stage USER %v; want one non-root user", u)
	}
	hc := final.find("healthcheck")
	if len(hc) != 1 || !slices.Contains(hc[0].args, "CMD") || !strings.Contains(strings.Join(hc[0].args, " "), "/usr/local/bin/grpc-health-probe") {
		t.Errorf("final stage HEALTHCHECK %v; want one through grpc-health-probe", hc)
	}
	if ep := final.find("entrypoint"); len(ep) != 1 || !strings.Contains(strings.Join(ep[0].args, " "), "/usr/local/bin/tetherd") {
		t.Errorf("final stage ENTRYPOINT %v; want tetherd", ep)
	}
	for _, s := range stages {
		for _, cp := range s.find("copy") {
			if slices.ContainsFunc(cp.flags, func(f string) bool { return strings.HasPrefix(f, "--from") }) {
				continue
			}
			for _, src := range cp.args[:len(cp.args)-1] {
				if src == "." {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("Dockerfile:%d: COPY %s: %v", cp.line, src, err)
				}
			}
		}
	}
}

// TestDockerBuildStageCompiles runs the build stage's go build commands,
// as written, in the repository with the stage's environment (no
// container runtime is needed): the binaries must build and be static.
func TestDockerBuildStageCompiles(t *testing.T) {
	build := parseDockerfile(t)[0]
	out := t.TempDir()
	env := cleanEnv()
	for _, e := range build.find("env") {
		for i := 0; i+1 < len(e.args); i += 2 {
			value := e.args[i+1]
			if e.args[i] == "GOFLAGS" && strings.Contains(os.Getenv("GOFLAGS"), "-buildvcs=false") {
				value += " -buildvcs=false" // as this machine's Go is set up
			}
			env = append(env, e.args[i]+"="+value)
		}
	}
	var built []string
	for _, run := range build.find("run") {
		script := strings.Join(run.args, " ")
		if !strings.HasPrefix(script, "go build ") {
			continue
		}
		script = strings.ReplaceAll(script, "/out/", out+"/")
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir, cmd.Env = root, env
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("Dockerfile:%d: %s: %v\n%s", run.line, script, err, b)
		}
		built = append(built, script)
	}
	if len(built) != 3 {
		t.Fatalf("the build stage has %d go build commands; want 3 (tetherd, tether, grpc-health-probe): %q", len(built), built)
	}
	for _, name := range []string{"tetherd", "tether", "grpc-health-probe"} {
		f, err := elf.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked: distroless static has no libc", name)
			}
		}
		f.Close()
	}
	if b, err := exec.Command(filepath.Join(out, "tetherd"), "--version").Output(); err != nil || !strings.HasPrefix(string(b), "tetherd ") {
		t.Errorf("tetherd --version: %q, %v", b, err)
	}
}

// TestImageConfig loads the config the image starts with through tetherd,
// with its file paths replaced.
func TestImageConfig(t *testing.T) {
	stages := parseDockerfile(t)
	cmd := stages[1].find("cmd")
	if len(cmd) != 1 || strings.Join(cmd[0].args, " ") != "--config /etc/tether/tetherd.conf" {
		t.Fatalf("CMD %v; want --config /etc/tether/tetherd.conf", cmd)
	}
	s := printConfig(t, readFile(t, "deploy/tetherd.conf"), "--tls-cert=", "--tls-key=", "--tokens-file=", "--insecure")
	if s["listen"] != "0.0.0.0:7070" || s["admin-listen"] != "0.0.0.0:9090" {
		t.Errorf("the image's config listens on %s and %s; want 0.0.0.0:7070 and 0.0.0.0:9090, the EXPOSEd ports", s["listen"], s["admin-listen"])
	}
}
