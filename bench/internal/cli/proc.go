package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tetherhq/tether/bench/internal/ctl"
	"github.com/tetherhq/tether/bench/internal/scenario"
	"github.com/tetherhq/tether/bench/internal/system"
	"github.com/tetherhq/tether/profile"
)

// ready is the line a serve process prints on stdout once it listens.
type ready struct {
	Addr    string `json:"addr"`
	Control string `json:"control"`
	PID     int    `json:"pid"`
}

// serve runs a system's server in this process until POST /quit or
// SIGTERM: the hidden subcommand the orchestrator re-executes itself with.
func serve(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	sysName := fs.String("system", "tether", "system under test")
	profName := fs.String("profile", "default", "liveness profile")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sys, err := system.Lookup(*sysName)
	if err != nil {
		return err
	}
	p, err := profile.Lookup(*profName)
	if err != nil {
		return err
	}
	app := &system.App{}
	srv, err := sys.NewServer(app, system.ServerOptions{Profile: p})
	if err != nil {
		return err
	}
	if tp, ok := srv.(system.TopicPublisher); ok {
		app.SetTopicPublisher(tp) // fanout: the system's own topics
	}
	lc := p.ListenConfig()
	lis, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	clis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	quit := make(chan struct{})
	hs := ctl.Serve(clis, func() any { return app.Counters() }, quit)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	line, _ := json.Marshal(ready{Addr: lis.Addr().String(), Control: clis.Addr().String(), PID: os.Getpid()})
	fmt.Fprintf(stdout, "%s\n", line)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case <-quit:
	case <-sig:
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = hs.Shutdown(ctx)
	return nil
}

// drive runs one Spec against a running server and prints its Result as
// JSON: the other hidden subcommand (a process of its own, so that it can
// be pinned with taskset like the server).
func drive(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("drive", flag.ContinueOnError)
	sysName := fs.String("system", "tether", "system under test")
	addr := fs.String("addr", "", "server address")
	control := fs.String("control", "", "server control address")
	specJSON := fs.String("spec", "", "the case, as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sys, err := system.Lookup(*sysName)
	if err != nil {
		return err
	}
	var spec scenario.Spec
	if err := json.Unmarshal([]byte(*specJSON), &spec); err != nil {
		return fmt.Errorf("--spec: %w", err)
	}
	env := scenario.Env{System: sys, Addr: *addr, Control: ctl.NewClient(*control),
		Progress: func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }}
	run := scenario.Run
	if spec.Scenario == "fanout" {
		run = scenario.Fanout
	}
	res, err := run(context.Background(), env, spec)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

// child is a process of this binary.
type child struct {
	cmd  *exec.Cmd
	done chan error
}

// command returns this binary with args, under taskset -c 0 when pin.
func command(ctx context.Context, pin bool, args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if !pin {
		return exec.CommandContext(ctx, exe, args...), nil
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return nil, errors.New("pinned runs need taskset (util-linux), which is not on PATH")
	}
	return exec.CommandContext(ctx, ts, append([]string{"-c", "0", exe}, args...)...), nil
}

// startServer starts a serve process and waits for its ready line.
func startServer(ctx context.Context, sys, prof string, pin bool, stderr io.Writer) (*child, ready, error) {
	cmd, err := command(ctx, pin, "serve", "--system", sys, "--profile", prof)
	if err != nil {
		return nil, ready{}, err
	}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, ready{}, err
	}
	if err := cmd.Start(); err != nil {
		return nil, ready{}, err
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
		c.done <- cmd.Wait()
	}()
	select {
	case line, ok := <-lines:
		var r ready
		if !ok || json.Unmarshal([]byte(line), &r) != nil {
			c.kill()
			return nil, ready{}, fmt.Errorf("server %s did not start (stdout %q)", sys, line)
		}
		return c, r, nil
	case <-time.After(30 * time.Second):
		c.kill()
		return nil, ready{}, fmt.Errorf("server %s: no ready line within 30s", sys)
	}
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// stop asks the server to quit and waits; kills it after 10s.
func (c *child) stop(control string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ctl.NewClient(control).Quit(ctx) == nil {
		select {
		case <-c.done:
			return
		case <-ctx.Done():
		}
	}
	c.kill()
}

// runDriver runs a drive process for spec and decodes its Result.
func runDriver(ctx context.Context, sys string, r ready, spec scenario.Spec, pin bool, stderr io.Writer) (*scenario.Result, error) {
	b, _ := json.Marshal(spec)
	cmd, err := command(ctx, pin, "drive", "--system", sys, "--addr", r.Addr, "--control", r.Control, "--spec", string(b))
	if err != nil {
		return nil, err
	}
	var out, errOut strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = io.MultiWriter(&errOut, stderr)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("driver %s: %w: %s", sys, err, strings.TrimSpace(errOut.String()))
	}
	var res scenario.Result
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		return nil, fmt.Errorf("driver %s: %w", sys, err)
	}
	res.Pinned = pin
	return &res, nil
}
