package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking for WithTarget (GRPC-NOTES §2.3)
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/h2window"
)

// serviceName is the health-checked name of the session service.
const serviceName = "tether.v1.TetherService"

// health is what the session knows of a backend.
type health int

const (
	healthUnknown     health = iota // not heard yet, or no health service
	healthServing                   // SERVING
	healthNotServing                // NOT_SERVING or SERVICE_UNKNOWN: draining or not ready
	healthUnreachable               // the health watch cannot reach it
)

// backend is one server the session may use.
type backend struct {
	addr string
	cc   *grpc.ClientConn
	ka   time.Duration // keepalive Time cc was built with

	heard func(turned bool) // tells the set a health report came, and whether the backend just turned SERVING

	mu         sync.Mutex
	health     health
	reported   bool // a health report (or its failure) came
	rtt        time.Duration
	avoidUntil time.Time // after a failure or a go_away
	stopWatch  context.CancelFunc
	watchDone  chan struct{}
}

func (b *backend) snapshot() (health, time.Duration, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.health, b.rtt, b.avoidUntil
}

func (b *backend) set(f func(*backend)) {
	b.mu.Lock()
	f(b)
	b.mu.Unlock()
}

// setHealth records a health report.
func (b *backend) setHealth(h health) {
	b.mu.Lock()
	// Turning SERVING counts only after a report that it was not (an
	// unknown first report is no news): else a backend whose health says
	// SERVING while its sessions fail would, after each reset, end the
	// session's wait again and again.
	turned := h == healthServing && b.reported && (b.health == healthNotServing || b.health == healthUnreachable)
	b.health, b.reported = h, true
	b.mu.Unlock()
	if b.heard != nil {
		b.heard(turned)
	}
}

func (b *backend) heardOnce() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reported
}

// backends is the session's set of servers: a static list, a DNS name
// resolved before every attempt, or one gRPC resolver target.
type backends struct {
	cfg *config
	rng *rand.Rand

	heard  chan struct{} // signalled on every health report
	lookup func(ctx context.Context, host string) ([]string, error)

	servingMu  sync.Mutex    // not mu: health reports come while mu waits for a watch to stop
	servingGen uint64        // counts backends turning SERVING
	serving    chan struct{} // closed and replaced when one does

	mu        sync.Mutex
	list      []*backend
	keepalive time.Duration // client keepalive Time: see newBackends, then raised to 2× the server's floor
	picked    bool          // a pick was made: the first pick waits for every backend's health
	closed    bool
}

func newBackends(cfg *config) *backends {
	iv := cfg.heartbeat
	if iv == 0 {
		iv = cfg.profile.Heartbeat.Interval
	}
	if adaptiveOn(cfg) {
		iv = max(iv, cfg.profile.Heartbeat.Max) // the longest it may learn
	}
	// The transport keepalive is the backstop for a connection without
	// heartbeats. At or below the heartbeat interval it would also fire
	// on a heartbeating one (a transport ping racing every pong), so it
	// waits an interval and a half: with an adaptive heartbeat, the
	// longest one; otherwise its pings would keep a NAT's mapping alive
	// between heartbeats, waking the radio, and hide the NAT's timer from
	// the search.
	ka := max(cfg.profile.Client.Time, iv+iv/2)
	bs := &backends{cfg: cfg, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), keepalive: ka,
		heard: make(chan struct{}, 1), lookup: net.DefaultResolver.LookupHost, serving: make(chan struct{})}
	for _, a := range cfg.addrs {
		bs.list = append(bs.list, &backend{addr: a})
	}
	if cfg.target != "" {
		bs.list = []*backend{{addr: cfg.target}}
	}
	return bs
}

// refresh re-resolves the DNS name, keeping backends that are still there.
func (bs *backends) refresh(ctx context.Context) error {
	if bs.cfg.dnsName == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(bs.cfg.dnsName)
	if err != nil {
		return fmt.Errorf("tether/client: WithDNS %q: %w", bs.cfg.dnsName, err)
	}
	ips, err := bs.lookup(ctx, host)
	if err != nil {
		return fmt.Errorf("tether/client: resolving %s: %w", host, err)
	}
	want := make(map[string]bool, len(ips))
	for _, ip := range ips {
		want[net.JoinHostPort(ip, port)] = true
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	var keep []*backend
	for _, b := range bs.list {
		if want[b.addr] {
			keep = append(keep, b)
			delete(want, b.addr)
		} else {
			b.close()
		}
	}
	for _, a := range slices.Sorted(mapKeys(want)) {
		keep = append(keep, &backend{addr: a})
	}
	bs.list = keep
	return nil
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// pick chooses a backend: healthy and not avoided first, then the least
// bad; among equals, home (the backend of the last stream) if it is one of
// them, else random or least RTT. With sticky (only home can resume the
// session), an unreachable home is tried once more first.
func (bs *backends) pick(home *backend, sticky bool) (*backend, error) {
	if err := bs.prepare(); err != nil {
		return nil, err
	}
	bs.waitHealth()
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.closed {
		return nil, ErrClosed
	}
	now := time.Now()
	best, cands := 1<<30, []*backend(nil)
	for _, b := range bs.list {
		switch r := rank(b, home, sticky, now); {
		case r < best:
			best, cands = r, []*backend{b}
		case r == best:
			cands = append(cands, b)
		}
	}
	if home != nil && slices.Contains(cands, home) {
		// The node that holds the session is as good as any: resuming
		// there keeps it, whatever the broker.
		return home, nil
	}
	if bs.cfg.pick == PickLeastRTT {
		cands = leastRTT(cands)
	}
	return cands[bs.rng.IntN(len(cands))], nil
}

// rank orders b for pick: lower is better. Healthy beats unknown beats
// not serving beats unreachable; a backend avoided until after now ranks
// two steps lower.
func rank(b, home *backend, sticky bool, now time.Time) int {
	h, _, avoid := b.snapshot()
	r := 0
	switch h {
	case healthServing:
	case healthUnknown:
		r = 1
	case healthNotServing:
		r = 3
	case healthUnreachable:
		r = 4
		if b == home && sticky {
			// Its health watch most likely broke with the stream: try
			// where the session lives once more before giving it up
			// (a failed open marks it avoided).
			r = 0
		}
	}
	if now.Before(avoid) {
		r += 2
	}
	return r
}

// leastRTT returns the candidates with the lowest RTT (several when they
// tie, as unmeasured ones do).
func leastRTT(cands []*backend) []*backend {
	slices.SortStableFunc(cands, func(a, b *backend) int {
		_, ra, _ := a.snapshot()
		_, rb, _ := b.snapshot()
		return int(ra - rb)
	})
	_, r0, _ := cands[0].snapshot()
	n := 1
	for n < len(cands) {
		if _, r, _ := cands[n].snapshot(); r != r0 {
			break
		}
		n++
	}
	return cands[:n]
}

// servingUntried reports whether some backend is SERVING and not avoided
// (a failed attempt avoids its backend for the backoff's Cap).
func (bs *backends) servingUntried() bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	now := time.Now()
	for _, b := range bs.list {
		if h, _, avoid := b.snapshot(); h == healthServing && !now.Before(avoid) {
			return true
		}
	}
	return false
}

// prepare gives every backend a connection and a health watch, so that
// even the first pick can skip one that is down or draining.
func (bs *backends) prepare() error {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.closed {
		return ErrClosed
	}
	if len(bs.list) == 0 {
		return errors.New("tether/client: no backends: the DNS name resolved to no address")
	}
	for _, b := range bs.list {
		if err := bs.startLocked(b); err != nil {
			return err
		}
	}
	return nil
}

// startLocked gives b a connection and, when health is watched, a watch.
func (bs *backends) startLocked(b *backend) error {
	if err := bs.ensureConnLocked(b); err != nil {
		return err
	}
	if bs.watchesLocked() && b.stopWatch == nil {
		ctx, cancel := context.WithCancel(context.Background())
		b.stopWatch, b.watchDone = cancel, make(chan struct{})
		go b.watch(ctx)
	}
	return nil
}

// turnedServing returns how many times a backend has turned SERVING, and
// a channel that is closed when one next does.
func (bs *backends) turnedServing() (uint64, <-chan struct{}) {
	bs.servingMu.Lock()
	defer bs.servingMu.Unlock()
	return bs.servingGen, bs.serving
}

func (bs *backends) noteServing() {
	bs.servingMu.Lock()
	defer bs.servingMu.Unlock()
	bs.servingGen++
	close(bs.serving)
	bs.serving = make(chan struct{})
}

// watchesLocked reports whether the backends' health is watched: only when
// a pick has a choice to make. With one backend (a single address, often a
// load balancer's) a health Watch would cost the server a stream and a
// goroutine per session and change no pick.
func (bs *backends) watchesLocked() bool {
	return bs.cfg.target == "" && len(bs.list) > 1
}

// waitHealth waits, at most the health wait (WithHealthWait), until the
// health of every backend is known on the session's first pick, so that
// the first stream does not simply go to the backend that answered first
// (which spread a fleet's sessions 35/9/7 over three nodes), and until the
// health of some backend is known on later picks (there is a choice by
// then; waiting for a silent backend would slow every failover). It
// returns at once when health is not watched.
func (bs *backends) waitHealth() {
	bs.mu.Lock()
	watched, all := bs.watchesLocked(), !bs.picked
	bs.picked = true
	bs.mu.Unlock()
	if !watched || bs.cfg.healthWait <= 0 {
		return // one backend, or gRPC's own health checking applies
	}
	t := time.NewTimer(bs.cfg.healthWait)
	defer t.Stop()
	for !bs.heardEnough(all) {
		select {
		case <-bs.heard:
		case <-t.C:
			return
		}
	}
}

// heardEnough reports whether the health of every backend (all) or of
// some backend is known.
func (bs *backends) heardEnough(all bool) bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	for _, b := range bs.list {
		if b.heardOnce() != all {
			return !all
		}
	}
	return all
}

// reset drops b's connection, which failed to carry a stream or went
// silent, and dials it afresh (gRPC would wait out its own backoff, failing
// streams at once meanwhile), watching its health again at once. Until
// the new watch answers, b counts as unreachable, as it just proved: so
// its first SERVING answer ends the wait of a session about to retry.
func (bs *backends) reset(b *backend) {
	bs.redial(b, func(b *backend) { b.health, b.reported = healthUnreachable, true })
}

// renew drops b's connection, which the server called old (go_away
// MAX_AGE), and dials it afresh; b's health stands. grpc-go keeps the old
// connection until its own GOAWAY and grace, and a stream opened on it
// gets only a short life from the server (see server.maxAgeAt): it would
// be sent away again, a reconnect (a phone's radio wake-up) for nothing.
func (bs *backends) renew(b *backend) { bs.redial(b, func(*backend) {}) }

// redial closes b's connection, applies mark to b and, while b is still
// one of the backends, builds its connection and health watch anew.
func (bs *backends) redial(b *backend, mark func(*backend)) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b.close()
	b.set(mark)
	if !bs.closed && slices.Contains(bs.list, b) {
		_ = bs.startLocked(b) // an error here is the next pick's to report
	}
}

// raiseKeepalive makes sure the client's keepalive Time is at least twice
// the server's floor (so it never trips too_many_pings): connections built
// from now on use it. b's connection, built with a lower Time, carries a
// stream whose heartbeat interval is interval; grpc-go pings only after
// Time without reading anything, and the heartbeat brings a frame at
// least every interval, so while the stream lives its connection never
// pings when interval and a half stays below Time: it is rebuilt at the
// next pick, without costing a stream. raiseKeepalive reports whether the
// stream must end now instead (its heartbeat is too slow to keep the
// connection busy).
func (bs *backends) raiseKeepalive(floor, interval time.Duration, b *backend) bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.keepalive = max(bs.keepalive, 2*floor)
	return b.ka < bs.keepalive && interval+interval/2 > b.ka
}

// ensureConnLocked builds b's ClientConn (again, if keepalive changed).
func (bs *backends) ensureConnLocked(b *backend) error {
	if b.cc != nil && b.ka == bs.keepalive {
		return nil
	}
	b.close()
	ka := bs.cfg.profile.Client
	ka.Time = bs.keepalive
	dialer := bs.cfg.profile.Dialer()
	creds := insecure.NewCredentials()
	if bs.cfg.tls != nil {
		creds = credentials.NewTLS(bs.cfg.tls)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(ka),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", addr)
		}),
		// gRPC redials a failed connection after 1s, growing to 2 minutes:
		// a backend back after a 10s outage would stay unseen (health
		// unreachable, streams failing at once) for up to 6s more. The
		// session paces its own attempts; this only bounds how late a
		// health watch sees the backend again.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: grpcbackoff.Config{
			BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second,
		}, MinConnectTimeout: 20 * time.Second}),
	}
	// Fixed windows: grpc-go's bandwidth estimator costs a PING round
	// trip per sparse message (internal/h2window).
	opts = append(opts, h2window.DialOptions()...)
	if bs.cfg.target != "" {
		opts = append(opts, grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":"`+serviceName+`"}}`))
	}
	if bs.cfg.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(bs.cfg.token)))
	}
	opts = append(opts, bs.cfg.dialOptions...)
	cc, err := grpc.NewClient(b.addr, opts...)
	if err != nil {
		return fmt.Errorf("tether/client: backend %s: %w", b.addr, err)
	}
	b.cc, b.ka = cc, bs.keepalive
	b.heard = func(turned bool) {
		if turned {
			bs.noteServing()
		}
		select {
		case bs.heard <- struct{}{}:
		default:
		}
	}
	return nil
}

// Health watches that fail are retried after healthRetry, doubling up to
// healthRetryCap (again from healthRetry once a watch got an answer). A
// retry waits for the connection to be ready (gRPC redials within a
// second, see ensureConnLocked), so a backend that comes back is seen as
// soon as it can be reached.
const (
	healthRetry    = 250 * time.Millisecond
	healthRetryCap = time.Second
)

// watch follows the backend's grpc.health.v1 status for the session
// service until ctx ends.
func (b *backend) watch(ctx context.Context) {
	defer close(b.watchDone)
	wait, retry := healthRetry, false
	for {
		answered, err := b.watchOnce(ctx, retry)
		if ctx.Err() != nil {
			return
		}
		if status.Code(err) == codes.Unimplemented {
			b.setHealth(healthUnknown) // no health service: fail open, as gRPC does
			return
		}
		b.setHealth(healthUnreachable)
		if answered {
			wait = healthRetry
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		wait, retry = min(2*wait, healthRetryCap), true
	}
}

// watchOnce runs one Watch call; it reports whether any answer came. A
// retry waits for the connection instead of failing at once: the backend
// is known to be unreachable already.
func (b *backend) watchOnce(ctx context.Context, retry bool) (answered bool, err error) {
	w, err := healthpb.NewHealthClient(b.cc).Watch(ctx, &healthpb.HealthCheckRequest{Service: serviceName}, grpc.WaitForReady(retry))
	if err != nil {
		return false, err
	}
	for ; ; answered = true {
		r, err := w.Recv()
		if err != nil {
			return answered, err
		}
		h := healthNotServing
		if r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			h = healthServing
		}
		b.setHealth(h)
	}
}

func (b *backend) close() {
	if b.stopWatch != nil {
		b.stopWatch()
		<-b.watchDone
		b.stopWatch = nil
	}
	if b.cc != nil {
		_ = b.cc.Close()
		b.cc = nil
	}
}

func (b *backend) client() tetherv1.TetherServiceClient { return tetherv1.NewTetherServiceClient(b.cc) }

func (bs *backends) close() {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.closed = true
	for _, b := range bs.list {
		b.close()
	}
}

// bearer sends a bearer token on every call. New has refused a token
// that would travel in plaintext beyond loopback.
type bearer string

func (t bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }
