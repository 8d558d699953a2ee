package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/internal/liveness"
)

// DefaultNetwork is the network the adaptive heartbeat learns for when the
// application names none (see [WithNetwork]).
const DefaultNetwork = "default"

// DefaultReprobe is how long a learned interval is trusted before the
// adaptive heartbeat probes for a longer one again: a day.
const DefaultReprobe = 24 * time.Hour

// LearnedInterval is what the adaptive heartbeat learned about one network.
type LearnedInterval struct {
	// Interval is the longest heartbeat interval confirmed to keep the
	// path alive.
	Interval time.Duration `json:"interval"`
	// Failed is the shortest interval seen to lose the path; zero when
	// none failed yet.
	Failed time.Duration `json:"failed,omitempty"`
	// At is when either last changed.
	At time.Time `json:"at"`
}

// Converged reports whether the search found the path's limit: an interval
// failed, and the good one is within 5 % of it.
func (l LearnedInterval) Converged() bool {
	return l.Failed > 0 && l.Interval < l.Failed && l.Failed-l.Interval <= l.Failed/20
}

// IntervalStore keeps what the adaptive heartbeat learned, per network, so
// that a restarted application starts from it. Load returns the zero value
// and no error for a network it knows nothing of. A Session calls it from
// its own goroutines, one call at a time; an implementation shared by
// several Sessions must be safe for concurrent use (those of this package
// are).
type IntervalStore interface {
	Load(network string) (LearnedInterval, error)
	Save(network string, l LearnedInterval) error
}

// NewMemoryIntervalStore returns an IntervalStore that keeps what was
// learned in memory, for the life of the process: the default.
func NewMemoryIntervalStore() IntervalStore { return &memoryStore{m: map[string]LearnedInterval{}} }

type memoryStore struct {
	mu sync.Mutex
	m  map[string]LearnedInterval
}

func (s *memoryStore) Load(network string) (LearnedInterval, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[network], nil
}

func (s *memoryStore) Save(network string, l LearnedInterval) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[network] = l
	return nil
}

// NewFileIntervalStore returns an IntervalStore kept in a small JSON file
// at path (one entry per network), for an application that wants what was
// learned to survive a restart. The file is written whole on each change
// (a temporary file renamed over it), created when missing; its directory
// must exist.
func NewFileIntervalStore(path string) IntervalStore { return &fileStore{path: path} }

type fileStore struct {
	mu   sync.Mutex
	path string
}

func (s *fileStore) read() (map[string]LearnedInterval, error) {
	m := map[string]LearnedInterval{}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("tether/client: interval store %s: %w (delete the file to start over)", s.path, err)
	}
	return m, nil
}

func (s *fileStore) Load(network string) (LearnedInterval, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.read()
	return m[network], err
}

func (s *fileStore) Save(network string, l LearnedInterval) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.read()
	if err != nil {
		m = map[string]LearnedInterval{} // a corrupt file is replaced
	}
	m[network] = l
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), s.path)
}

// HeartbeatStep is one move of the adaptive heartbeat.
type HeartbeatStep struct {
	// Network is the network it learned for (see WithNetwork).
	Network string
	// Interval is the interval used from now on, Previous the one before.
	Interval, Previous time.Duration
	// Learned is what is known now.
	Learned LearnedInterval
	// Reason says why: "confirmed" (heartbeats at Previous after a full
	// interval of silence were answered, so a longer one is probed),
	// "lost" (the path was lost after a heartbeat at Previous: back to the
	// last good interval) or "revoked" (lost twice at the good interval:
	// the path's timer shrank, and the search starts again lower).
	Reason string
	// Time is when it happened.
	Time time.Time
}

// adaptConfig is the adaptive heartbeat's configuration.
type adaptConfig struct {
	on      *bool // nil: the profile's Heartbeat.Adaptive
	store   IntervalStore
	network string
	reprobe time.Duration
	onStep  func(HeartbeatStep)
}

// WithAdaptiveHeartbeat turns the adaptive heartbeat on or off, whatever
// the profile says ([profile.Mobile] turns it on). With it on, the session
// learns the longest heartbeat interval the path keeps alive, between the
// profile's (or WithHeartbeat's) interval and the server's maximum
// (Welcome.limits.max_heartbeat_interval): it lengthens the interval by
// half while heartbeats sent after a full interval of silence are
// answered (3 in a row at each step), goes back to the last good interval
// when the path is lost after such a heartbeat, and bisects between the
// two until they are within 5 %. It tells the server each interval it
// moves to (a SetHeartbeat frame), so the server's dead-after follows;
// a server that does not offer that (Welcome.liveness.set_heartbeat)
// keeps the session at the granted interval. What it learned is kept
// per network (WithNetwork) in an [IntervalStore] (WithIntervalStore).
func WithAdaptiveHeartbeat(on bool) Option {
	return optionFunc(func(c *config) error { c.adapt.on = &on; return nil })
}

// WithIntervalStore keeps what the adaptive heartbeat learned in store.
// The default keeps it in memory, for the life of the process; see
// [NewFileIntervalStore].
func WithIntervalStore(store IntervalStore) Option {
	return optionFunc(func(c *config) error {
		if store == nil {
			return errors.New("WithIntervalStore: the store must not be nil")
		}
		c.adapt.store = store
		return nil
	})
}

// WithNetwork names the network the session starts on (a Wi-Fi SSID, a
// carrier), for the adaptive heartbeat: what it learns is kept per
// network, since each has its own NAT. The default is [DefaultNetwork];
// see [Session.SetNetwork] for a change while the session lives.
func WithNetwork(id string) Option {
	return optionFunc(func(c *config) error {
		if id == "" {
			return errors.New("WithNetwork: the network id must not be empty")
		}
		c.adapt.network = id
		return nil
	})
}

// WithReprobe sets how long the adaptive heartbeat trusts a search that
// ended before it probes for a longer interval again (a NAT's timer may
// have grown). The default is [DefaultReprobe]; it must be positive.
func WithReprobe(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithReprobe: %v must be positive", d)
		}
		c.adapt.reprobe = d
		return nil
	})
}

// WithOnHeartbeat calls f on every step of the adaptive heartbeat, in
// order with the state changes, on the same goroutine as WithOnState's
// callback.
func WithOnHeartbeat(f func(HeartbeatStep)) Option {
	return optionFunc(func(c *config) error { c.adapt.onStep = f; return nil })
}

// adaptive is a session's adaptive heartbeat: the search of the current
// network, which outlives streams.
type adaptive struct {
	s       *Session
	store   IntervalStore
	reprobe time.Duration
	base    time.Duration

	lo, hi time.Duration // the profile's bounds, until a Welcome gives the server's

	mu      sync.Mutex
	network string
	l       *liveness.Learner
}

// adaptiveOn reports whether the adaptive heartbeat is on: WithAdaptiveHeartbeat,
// else the profile's Heartbeat.Adaptive.
func adaptiveOn(cfg *config) bool {
	if cfg.adapt.on != nil {
		return *cfg.adapt.on
	}
	return cfg.profile.Heartbeat.Adaptive
}

// newAdaptive returns the session's adaptive heartbeat, or nil when it is
// off.
func newAdaptive(s *Session) *adaptive {
	cfg := s.cfg
	if !adaptiveOn(cfg) {
		return nil
	}
	a := &adaptive{s: s, store: cfg.adapt.store, reprobe: cfg.adapt.reprobe, network: cfg.adapt.network, base: cfg.heartbeat,
		lo: cfg.profile.Heartbeat.Min, hi: cfg.profile.Heartbeat.Max}
	if a.store == nil {
		a.store = NewMemoryIntervalStore()
	}
	if a.reprobe == 0 {
		a.reprobe = DefaultReprobe
	}
	if a.network == "" {
		a.network = DefaultNetwork
	}
	if a.base == 0 {
		a.base = cfg.profile.Heartbeat.Interval
	}
	a.load()
	return a
}

// load starts the search of the current network from what the store
// knows of it.
func (a *adaptive) load() {
	l, err := a.store.Load(a.network)
	if err != nil {
		a.s.cfg.logger.Warn("tether: reading the learned heartbeat interval failed; learning afresh", "network", a.network, "err", err)
	}
	saved := liveness.Learned{Good: l.Interval, Failed: l.Failed, At: l.At}
	a.l = liveness.NewLearner(a.base, a.lo, a.hi, a.reprobe, saved, time.Now())
}

// interval is the interval to ask for in Hello.
func (a *adaptive) interval() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.l.Interval()
}

// welcomed starts (or bounds) the search with the server's bounds, and
// reports whether the server takes SetHeartbeat: without it the interval
// cannot move while a stream lives.
func (a *adaptive) welcomed(w *tetherv1.Welcome) bool {
	if !w.GetLiveness().GetSetHeartbeat() {
		return false
	}
	lo, hi := w.GetLimits().GetMinHeartbeatInterval().AsDuration(), w.GetLimits().GetMaxHeartbeatInterval().AsDuration()
	if hi <= 0 {
		hi = max(a.base, lo)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lo, a.hi = lo, hi
	a.l.SetBounds(lo, hi)
	return true
}

// beat takes in a heartbeat answered after idle of silence on c, and
// moves c's interval when the search says so.
func (a *adaptive) beat(c *conn, idle time.Duration) {
	a.mu.Lock()
	prev := a.l.Interval()
	if !a.l.Beat(idle, time.Now()) {
		a.mu.Unlock()
		return
	}
	step := a.stepLocked(prev, "confirmed")
	a.mu.Unlock()
	a.apply(c, step)
}

// lost takes in the loss of a stream after a heartbeat that followed a
// full interval of silence.
func (a *adaptive) lost() {
	a.mu.Lock()
	prev, good := a.l.Interval(), a.l.State().Good
	if !a.l.Lost(time.Now()) {
		a.mu.Unlock()
		return
	}
	reason := "lost"
	if prev <= good {
		reason = "revoked"
	}
	step := a.stepLocked(prev, reason)
	a.mu.Unlock()
	a.apply(nil, step)
}

// fullSilence reports whether a ping sent after idle of silence tested
// the interval in use.
func (a *adaptive) fullSilence(idle time.Duration) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.l.FullSilence(idle)
}

func (a *adaptive) stepLocked(prev time.Duration, reason string) HeartbeatStep {
	st := a.l.State()
	return HeartbeatStep{Network: a.network, Interval: a.l.Interval(), Previous: prev, Reason: reason, Time: time.Now(),
		Learned: LearnedInterval{Interval: st.Good, Failed: st.Failed, At: st.At}}
}

// apply makes step known: the store, the metrics, the log, the callback
// and, on c when it still lives, the server (SetHeartbeat).
func (a *adaptive) apply(c *conn, step HeartbeatStep) {
	s := a.s
	if err := a.store.Save(step.Network, step.Learned); err != nil {
		s.cfg.logger.Warn("tether: storing the learned heartbeat interval failed", "network", step.Network, "err", err)
	}
	s.metrics.heartbeat(step)
	s.mu.Lock()
	s.stats.Heartbeat, s.stats.HeartbeatLearned = step.Interval, step.Learned
	s.mu.Unlock()
	s.cfg.logger.Info("tether: heartbeat interval "+step.Reason, "network", step.Network, "interval", step.Interval, "previous", step.Previous, "good", step.Learned.Interval, "failed", step.Learned.Failed)
	if f := s.cfg.adapt.onStep; f != nil {
		s.events.push(func() { f(step) })
	}
	if c != nil {
		c.pulse.setInterval(step.Interval)
		c.pushCtrl(&tetherv1.ConnectRequest{Frame: &tetherv1.ConnectRequest_SetHeartbeat{SetHeartbeat: &tetherv1.SetHeartbeat{Interval: durationpb.New(step.Interval)}}})
	}
}

// setNetwork switches the search to network's: what was learned for it
// before, if anything.
func (a *adaptive) setNetwork(network string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if network == a.network {
		return
	}
	a.network = network
	a.load()
}

// SetNetwork tells the session that the device moved to another network
// (a Wi-Fi SSID, a carrier: the application's choice of id), and
// reconnects at once, as [Session.Reconnect] does. The adaptive heartbeat
// then starts from what it learned for that network before, if anything.
// An empty id means [DefaultNetwork].
func (s *Session) SetNetwork(id string) {
	if id == "" {
		id = DefaultNetwork
	}
	if s.adapt != nil {
		s.adapt.setNetwork(id)
	}
	s.Reconnect()
}

// adaptLost tells the adaptive heartbeat that c ended with err: a loss of
// the path after a ping that followed a full interval of silence (and got
// no answer) counts against that interval. An end the session asked for,
// a suspend or a GoAway other than a heartbeat timeout does not.
func (s *Session) adaptLost(c *conn, err error) {
	if s.adapt == nil || s.isSuspended() || !pathLost(err) {
		return
	}
	if idle, ok := c.pulse.unanswered(); ok && s.adapt.fullSilence(idle) {
		s.adapt.lost()
	}
}

// pathLost reports whether a stream that ended with err lost its path: it
// went silent (either side's heartbeat timeout) or broke (UNAVAILABLE).
func pathLost(err error) bool {
	var ga *GoAwayError
	if errors.As(err, &ga) {
		return ga.Reason == GoAwayHeartbeatTimeout
	}
	if errors.Is(err, errHeartbeat) {
		return true
	}
	return CodeOf(err) == codes.Unavailable
}

// adaptWelcomed takes in a Welcome's heartbeat: the granted interval, and
// the bounds of the adaptive heartbeat's search.
func (s *Session) adaptWelcomed(w *tetherv1.Welcome) {
	iv := w.GetHeartbeatInterval().AsDuration()
	s.metrics.interval.Set(iv.Seconds())
	s.mu.Lock()
	s.stats.Heartbeat = iv
	s.mu.Unlock()
	if s.adapt != nil {
		s.adapt.welcomed(w)
	}
}
