package cli

import (
	"bufio"
	"bytes"
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
	"strconv"
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
	var node nodeFlags
	node.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	sys, p, err := lookup(*sysName, *profName)
	if err != nil {
		return err
	}
	app := &system.App{}
	srv, err := sys.NewServer(app, node.options(p))
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
	return serveUntilQuit("serve", srv, lis, func() any { return app.Counters() }, stdout)
}

// nodeFlags are the flags of serve and xserve that place a server among
// several nodes: its broker and its node id.
type nodeFlags struct {
	nats       string
	durability string
	replicas   int
	id         string
}

func (n *nodeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&n.nats, "nats", "", "NATS server URLs (comma-separated): the system's shared broker instead of its in-memory one")
	fs.StringVar(&n.durability, "nats-durability", "", "with --nats: the shared broker's durability mode (tether: cluster or node; empty: its default)")
	fs.IntVar(&n.replicas, "replicas", 0, "with --nats: JetStream replicas of the broker's streams (0: the broker's default, 1)")
	fs.StringVar(&n.id, "id", "", "node id (several nodes on one NATS broker need one each; empty: the system's bench name)")
}

// options returns the server options of the flags with profile p.
func (n *nodeFlags) options(p profile.Profile) system.ServerOptions {
	return system.ServerOptions{Profile: p, NATS: n.nats, NATSDurability: n.durability, Replicas: n.replicas, ID: n.id}
}

// lookup returns the system and the liveness profile named.
func lookup(sysName, profName string) (system.System, profile.Profile, error) {
	sys, err := system.Lookup(sysName)
	if err != nil {
		return system.System{}, profile.Profile{}, err
	}
	p, err := profile.Lookup(profName)
	if err != nil {
		return system.System{}, profile.Profile{}, err
	}
	return sys, p, nil
}

// serveUntilQuit serves srv on lis and stats on a control endpoint,
// prints the ready line, and stops srv on POST /quit or SIGTERM; it
// returns early, naming the subcommand, if Serve fails.
func serveUntilQuit(name string, srv system.Server, lis net.Listener, stats func() any, stdout io.Writer) error {
	clis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	quit := make(chan struct{})
	hs := ctl.Serve(clis, stats, quit)
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
		return fmt.Errorf("%s: %w", name, err)
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
	addrs := fs.String("addrs", "", "every node's address, comma-separated, when several nodes share a broker (the first is --addr)")
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
	if *addrs != "" {
		env.Addrs = strings.Split(*addrs, ",")
	}
	res, err := scenario.Run(context.Background(), env, spec)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

// command returns this binary with args, under taskset -c 0 when pin, in a
// process group of its own (ownGroup).
func command(ctx context.Context, pin bool, args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if pin {
		ts, err := exec.LookPath("taskset")
		if err != nil {
			return nil, errors.New("pinned runs need taskset (util-linux), which is not on PATH")
		}
		cmd = exec.CommandContext(ctx, ts, append([]string{"-c", "0", exe}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, exe, args...)
	}
	ownGroup(cmd)
	return cmd, nil
}

// proc is a process of this binary speaking lines on stdout (and, for
// xclient, reading commands on stdin).
type proc struct {
	name  string // the subcommand
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	done  chan error
}

// startProc starts this binary with args (args[0] the subcommand), under
// taskset -c 0 when pin.
func startProc(ctx context.Context, pin bool, stderr io.Writer, args ...string) (*proc, error) {
	cmd, err := command(ctx, pin, args...)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: args[0], cmd: cmd, in: in, lines: make(chan string, 16), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<26)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	return p, nil
}

// next returns the next stdout line.
func (p *proc) next(timeout time.Duration) (string, error) {
	select {
	case l, ok := <-p.lines:
		if !ok {
			return "", fmt.Errorf("%s exited", p.name)
		}
		return l, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("%s: no answer within %v", p.name, timeout)
	}
}

// ask writes a command line and returns the answer line.
func (p *proc) ask(cmd string, timeout time.Duration) (string, error) {
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		return "", err
	}
	return p.next(timeout)
}

// quit closes stdin and waits (kills after 20s).
func (p *proc) quit() {
	_ = p.in.Close()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// serverProc is a running serve or xserve process.
type serverProc struct {
	*proc
	ready
	ctl *ctl.Client
}

// startServer starts a serve or xserve process of system sys (args) and
// waits for its ready line.
func startServer(ctx context.Context, pin bool, stderr io.Writer, sys string, args ...string) (*serverProc, error) {
	p, err := startProc(ctx, pin, stderr, args...)
	if err != nil {
		return nil, err
	}
	line, err := p.next(30 * time.Second)
	var r ready
	if err == nil {
		err = json.Unmarshal([]byte(line), &r)
	}
	if err != nil {
		p.kill()
		return nil, fmt.Errorf("server %s: %w", sys, err)
	}
	return &serverProc{proc: p, ready: r, ctl: ctl.NewClient(r.Control)}, nil
}

// stop asks the server to quit and waits; kills it after 10s.
func (s *serverProc) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.ctl.Quit(ctx) == nil {
		select {
		case <-s.done:
			return
		case <-ctx.Done():
		}
	}
	s.kill()
}

// runDriver runs a drive process for spec and decodes its Result; more
// are further drive flags (--addrs).
func runDriver(ctx context.Context, sys string, r ready, spec scenario.Spec, pin bool, stderr io.Writer, more ...string) (*scenario.Result, error) {
	b, _ := json.Marshal(spec)
	cmd, err := command(ctx, pin, append([]string{"drive", "--system", sys, "--addr", r.Addr, "--control", r.Control, "--spec", string(b)}, more...)...)
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

// cpu returns the user+system CPU time the process used so far, from
// /proc (Linux); zero where that cannot be read.
func (p *proc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are fields 14 and 15 of stat(5).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// cpuAll sums cpu over ps.
func cpuAll(ps []*proc) time.Duration {
	var d time.Duration
	for _, p := range ps {
		d += p.cpu()
	}
	return d
}
