package protocheck_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// repoRoot is where buf.yaml lives.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "buf.yaml")); err != nil {
		t.Fatalf("buf.yaml not found at %s: %v", root, err)
	}
	return root
}

// buf runs the pinned buf with args in the repository root.
func buf(t *testing.T, root string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool", "-modfile=tools/go.mod", "buf"}, args...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("buf %v: %v\n%s", args, err, out)
	}
}

func TestBufLint(t *testing.T) {
	buf(t, repoRoot(t), "lint")
}

func TestGeneratedCodeIsUpToDate(t *testing.T) {
	root := repoRoot(t)
	out := t.TempDir()
	buf(t, root, "generate", "--output", out)
	want := readTree(t, filepath.Join(out, "gen"))
	got := readTree(t, filepath.Join(root, "gen"))
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("gen/%s is missing: run `go tool -modfile=tools/go.mod buf generate` and commit gen/", name)
		case !bytes.Equal(g, w):
			t.Errorf("gen/%s differs from what buf generate makes: run `go tool -modfile=tools/go.mod buf generate` and commit gen/", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("gen/%s is not generated from proto/: delete it", name)
		}
	}
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
