package nats

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tetherhq/tether/broker"
	"github.com/tetherhq/tether/broker/memory"
)

// guardPeriod is how long a node marks its messages to an address after
// parking one for it (see parkMarks): long enough for a new
// subscription's interest to reach every NATS server, after which no
// publisher parks for an address a node holds.
const guardPeriod = 10 * time.Second

// lameDuck is how long a node keeps its subscription to a session's or
// client id's route after the last Unbind, answering 0 at once: requests
// already on their way while the unsubscription reaches every NATS server
// then get an answer (and the publisher parks the message) instead of
// timing out.
const lameDuck = 2 * time.Second

// dispatchBuffer is how many routed messages a dispatch shard queues for
// delivery; beyond it NATS reports a slow consumer and drops them.
const dispatchBuffer = 1 << 14

// dispatchShards is how many goroutines deliver routed messages, each the
// messages of the addresses whose route subject hashes to it (see shard):
// one address's messages keep their order, and one delivery that waits
// for NATS (parked messages drained before a marked delivery, an
// eviction flushing a log) holds up only the addresses of its shard.
const dispatchShards = 16

// Header names on routed messages.
const (
	hdrOp   = "Tether-Op"
	opPoke  = "poke"
	opEvict = "evict"
)

var (
	errStarted     = errors.New("tether/broker/nats: already started")
	errNotStarted  = errors.New("tether/broker/nats: not started: call Start first")
	errNilReceiver = errors.New("tether/broker/nats: nil receiver")
	errEcho        = errors.New("tether/broker/nats: the connection echoes its own messages: connect with nats.NoEcho() (see ConnectOptions)")
)

// Broker is a [broker.Broker] shared by many tether nodes over NATS, with
// JetStream keeping session logs, parked messages, session records and
// idempotency keys. See the package documentation for the layout. It is
// safe for concurrent use.
type Broker struct {
	o      Options
	nc     *nats.Conn
	ownsNC bool
	js     jetstream.JetStream
	subj   subjects

	// streams holds the handles on the JetStream streams, set by the
	// first createStreams that succeeds and replaced only by another that
	// succeeds (a handle names its stream: it stays valid when the stream
	// is recreated). streamMu serializes createStreams.
	streams  atomic.Pointer[streamHandles]
	streamMu sync.Mutex
	panics   atomic.Uint64 // recovered panics of background goroutines

	node     string
	instance string // this Broker value's random id, in its claims
	receiver broker.Receiver
	started  atomic.Bool
	closed   atomic.Bool
	done     chan struct{}
	wg       sync.WaitGroup
	shards   [dispatchShards]chan *nats.Msg // see shard

	bindMu sync.Mutex
	binds  map[broker.Address]*binding

	logMu sync.Mutex
	logs  map[string]*logState
	reads map[string]readMark // logs read, not written here (see loadOwn)

	// nodeLogs are the logs in DurabilityNode (nodelog.go); logs stays
	// empty then.
	nodeLogs nodeLogs
	// local, in DurabilityNode, keeps the idempotency keys (Seen) in this
	// node's memory.
	local *memory.Broker

	pendMu   sync.Mutex
	issued   uint64              // appends issued so far
	pending  []*pend             // log appends in issue order
	inflight map[*nats.Msg]*pend // the same, by message, for the ack handlers

	purges  purger
	appends appender
	records refresher // the records of connected sessions, kept alive

	// recheck is set when the connection drops: before delivering to a
	// session again, the node checks which of its sessions another node
	// took over meanwhile (afterReconnect, one at a time under ownMu).
	recheck atomic.Bool
	ownMu   sync.Mutex

	// appendFails counts the log appends that failed as Append was
	// called: a delivery that reached no session while it grew was refused
	// by a failed append, not by an absent session (see Publish, handle).
	appendFails atomic.Uint64
	lost        atomic.Uint64 // messages lost (see reportLost)

	asker   asker
	answers chan answer // deliveries to answer once their appends are stored

	healthMu sync.Mutex
	health   []func(error)
	lastErr  error

	guardPeriod time.Duration // see guardPeriod; tests shorten it
	marks       parkMarks     // what this node parked lately
}

// binding is one address bound on this node.
type binding struct {
	n    int // binds; 0 while lame (see lameDuck)
	sub  *nats.Subscription
	lame *time.Timer
	// guard serializes draining parked messages with the deliveries that
	// must follow them (see deliverLocal).
	guard   sync.Mutex
	drained uint64        // stream seq of the last parked message delivered
	retry   time.Duration // the delay before a failed drain is tried again
	// cleared is the highest park mark (see parkMarks) a drain has dealt
	// with: a delivery marked with it or less needs no drain of its own.
	// Guarded by guard.
	cleared uint64
	// chains are the pipelines whose messages arrived here (see chain).
	chains chains
	// owed is set while the node owes the address a drain before its next
	// delivery: from the bind (or a reconnect) until a drain succeeds.
	// Publishers parked while no node answered for the address, and no
	// delivery may overtake that, whoever its publisher.
	owed atomic.Bool
}

var (
	_ broker.Broker         = (*Broker)(nil)
	_ broker.HealthNotifier = (*Broker)(nil)
	_ broker.Pipeliner      = (*Broker)(nil)
)

// New returns a broker on nc, which must have been opened with
// nats.NoEcho() (see [ConnectOptions]). The broker installs nc's
// disconnect, reconnect and error handlers (calling any that were set) and
// does no I/O until [Broker.Start]; Close does not close nc.
func New(nc *nats.Conn, o Options) (*Broker, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if !nc.Opts.NoEcho {
		return nil, errEcho
	}
	b := &Broker{
		o:        o,
		nc:       nc,
		subj:     newSubjects(o.Prefix),
		done:     make(chan struct{}),
		answers:  make(chan answer, dispatchShards*dispatchBuffer),
		binds:    make(map[broker.Address]*binding),
		logs:     make(map[string]*logState),
		reads:    make(map[string]readMark),
		inflight: make(map[*nats.Msg]*pend),
		instance: rand.Text(),

		guardPeriod: guardPeriod,
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(16384),
		jetstream.WithPublishAsyncTimeout(o.Timeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, a *jetstream.PubAck) { b.acked(m, a.Sequence, nil) }),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) { b.acked(m, 0, err) }),
	)
	if err != nil {
		return nil, fmt.Errorf("tether/broker/nats: %w", err)
	}
	b.js = js
	b.lastErr = errNotStarted
	for i := range b.shards {
		b.shards[i] = make(chan *nats.Msg, dispatchBuffer)
	}
	b.appends.wake = make(chan struct{}, 1)
	b.nodeLogs.wake = make(chan struct{}, 1)
	if o.Durability == DurabilityNode {
		b.local = memory.New()
	}
	b.purges = purger{b: b, want: make(map[string]struct{}), wake: make(chan struct{}, 1)}
	b.hookConn()
	return b, nil
}

// Connect dials url (a comma-separated list of NATS servers) with
// [ConnectOptions] and then opts, and returns a broker that owns the
// connection: Close closes it.
func Connect(url string, o Options, opts ...nats.Option) (*Broker, error) {
	all := append(ConnectOptions("tether"), opts...)
	all = append(all, nats.NoEcho())
	nc, err := nats.Connect(url, all...)
	if err != nil {
		return nil, fmt.Errorf("tether/broker/nats: connecting to %s: %w", url, err)
	}
	b, err := New(nc, o)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.ownsNC = true
	return b, nil
}

// Conn returns the broker's NATS connection.
func (b *Broker) Conn() *nats.Conn { return b.nc }

// Start creates or updates the JetStream streams, attaches the node and
// starts delivering what is routed to it.
func (b *Broker) Start(ctx context.Context, node string, r broker.Receiver) error {
	if r == nil {
		return errNilReceiver
	}
	if b.closed.Load() {
		return broker.ErrClosed
	}
	if !b.started.CompareAndSwap(false, true) {
		return errStarted
	}
	b.node, b.receiver = node, r
	if err := b.createStreamsRetrying(ctx); err != nil {
		b.started.Store(false)
		return err
	}
	if err := b.asker.start(b.nc, b.subj.liveness(node)); err != nil {
		b.started.Store(false)
		return err
	}
	b.wg.Add(4 + dispatchShards)
	go b.publishAppends()
	go b.refreshRecords()
	for _, ch := range b.shards {
		go b.dispatch(ch)
	}
	go b.answer()
	go b.purges.run()
	if b.o.Durability == DurabilityNode {
		b.wg.Add(1)
		go b.writeHorizons()
	}
	b.setHealth(nil)
	return nil
}

// createStreamsRetrying creates the streams, retrying for up to 30 seconds
// (within ctx): a NATS cluster that just formed may still be electing its
// JetStream leader, and nodes starting together race to create them.
func (b *Broker) createStreamsRetrying(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	wait := 250 * time.Millisecond
	for {
		actx, acancel := b.bound(ctx)
		err := b.createStreams(actx)
		acancel()
		if err == nil {
			return nil
		}
		b.o.Logger.Warn("tether: nats broker: creating the JetStream streams failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up after 30s: is JetStream enabled on the NATS servers, and do they have a JetStream leader?)", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// streamHandles are the broker's handles on its two streams.
type streamHandles struct{ log, kv jetstream.Stream }

// logStream returns the handle on the log stream, or errNotReady.
func (b *Broker) logStream() (jetstream.Stream, error) {
	if h := b.streams.Load(); h != nil {
		return h.log, nil
	}
	return nil, errNotReady
}

// kvStream returns the handle on the record stream, or errNotReady.
func (b *Broker) kvStream() (jetstream.Stream, error) {
	if h := b.streams.Load(); h != nil {
		return h.kv, nil
	}
	return nil, errNotReady
}

// createStreams creates or updates the streams, one caller at a time. The
// handles change only when both succeed: a failure (JetStream electing a
// leader, say) leaves the previous ones, or none before the first success.
//
// With one replica the streams allow direct gets, which the handles then
// use for every read (a record, a key, the check for parked messages):
// the stream's only server answers them, as consistently as an API read,
// without JetStream's API queue (a relay through one node: 2-4x the
// messages per second). With more replicas a follower that lags could
// answer a direct get, so reads stay API requests, which the leader
// answers.
func (b *Broker) createStreams(ctx context.Context) error {
	b.streamMu.Lock()
	defer b.streamMu.Unlock()
	storage := jetstream.FileStorage
	if b.o.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	logStream, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              b.subj.logStream,
		Description:       "tether session logs and parked messages",
		Subjects:          []string{b.subj.prefix + ".log.*", b.subj.prefix + ".park.*.*"},
		Retention:         jetstream.LimitsPolicy,
		MaxAge:            b.o.Retention,
		MaxMsgsPerSubject: b.o.MaxLogEntries,
		Discard:           jetstream.DiscardOld,
		Storage:           storage,
		Replicas:          b.o.Replicas,
		Duplicates:        time.Second,
		AllowDirect:       b.o.Replicas == 1, // see createStreams
	})
	if err != nil {
		return fmt.Errorf("tether/broker/nats: creating stream %s: %w", b.subj.logStream, err)
	}
	kvStream, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              b.subj.kvStream,
		Description:       "tether session records, client ids and idempotency keys",
		Subjects:          []string{b.subj.prefix + ".rec.*", b.subj.prefix + ".cid.*", b.subj.prefix + ".seen.*"},
		Retention:         jetstream.LimitsPolicy,
		MaxMsgsPerSubject: 1,
		Discard:           jetstream.DiscardOld,
		Storage:           storage,
		Replicas:          b.o.Replicas,
		AllowMsgTTL:       true,
		Duplicates:        time.Second,
		AllowDirect:       b.o.Replicas == 1, // see createStreams
	})
	if err != nil {
		return fmt.Errorf("tether/broker/nats: creating stream %s: %w", b.subj.kvStream, err)
	}
	b.streams.Store(&streamHandles{log: logStream, kv: kvStream})
	return nil
}

// Shared reports true: every node on the same NATS system and prefix
// shares routes, logs, records and idempotency keys.
func (b *Broker) Shared() bool { return true }

// bound derives a context bounded by the broker's Timeout.
func (b *Broker) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.o.Timeout)
}

func (b *Broker) usable() error {
	if b.closed.Load() {
		return broker.ErrClosed
	}
	if !b.started.Load() {
		return errNotStarted
	}
	return nil
}

// Bind subscribes the node to addr's route on the first bind. For a
// session or client id it then delivers the address's parked messages; if
// that fails, it is tried again in the background (see the package
// documentation) and Bind still succeeds.
func (b *Broker) Bind(ctx context.Context, addr broker.Address) (err error) {
	defer b.callErr(&err)
	if err := b.usable(); err != nil {
		return err
	}
	subj, err := b.subj.route(addr)
	if err != nil {
		return err
	}
	b.bindMu.Lock()
	bd := b.binds[addr]
	switch {
	case bd != nil && bd.n > 0:
		bd.n++
		b.bindMu.Unlock()
		return nil
	case bd != nil: // lame: bound again before the unsubscription
		bd.lame.Stop()
		bd.n = 1
		bd.owed.Store(addr.Kind != broker.KindTopic)
	default:
		bd = &binding{n: 1}
		bd.owed.Store(addr.Kind != broker.KindTopic) // before a delivery can come
		sub, err := b.nc.ChanSubscribe(subj, b.shard(subj))
		if err != nil {
			b.bindMu.Unlock()
			return fmt.Errorf("tether/broker/nats: subscribing to %s: %w", addr.Kind, err)
		}
		bd.sub = sub
		b.binds[addr] = bd
	}
	b.bindMu.Unlock()
	if addr.Kind == broker.KindTopic {
		return nil
	}
	if !b.nc.IsConnected() {
		// The subscription is made again on the reconnect, after which
		// the node delivers what was parked meanwhile (afterReconnect).
		return nil
	}
	// Make sure the NATS server knows the interest before reading what was
	// parked, so that whatever is parked later is followed by a poke or a
	// delivery that reaches this node.
	ctx, cancel := b.bound(ctx)
	defer cancel()
	if err := b.nc.FlushWithContext(ctx); err != nil {
		// Not bound, then: a binding left behind would take the
		// address's messages for a session the caller drops (they
		// would wait parked under this node's claim).
		_ = b.Unbind(context.WithoutCancel(ctx), addr)
		return fmt.Errorf("tether/broker/nats: flushing the subscription: %w", err)
	}
	bd.guard.Lock()
	defer bd.guard.Unlock()
	if _, err := b.drainLocked(ctx, addr, bd); err != nil {
		// Not the Bind's failure: some parked messages may have gone to
		// the caller's session already (here, or by a poke's drain), and
		// failing would make it drop that session. The rest follow: the
		// drain is tried again, and deliveries park behind them meanwhile.
		b.o.Logger.Warn("tether: nats broker: delivering parked messages failed; trying again", "target", addr.Kind.String(), "err", err)
	}
	// A publisher that found no holder a moment ago may park after this
	// drain and poke before its NATS server knows this subscription (in a
	// cluster): the node looks once more.
	b.pokeAt(addr, time.Now().Add(bindRecheck))
	return nil
}

// bindRecheck is how long after a bind the node drains the address's
// parked messages once more.
const bindRecheck = 2 * time.Second

// Unbind withdraws one bind. After the last, the route answers 0 for a
// moment (see lameDuck) and is then unsubscribed; for a session, the
// node's writes to the log are then flushed to JetStream and its copy of
// the log forgotten, so that the next holder reads it complete.
func (b *Broker) Unbind(ctx context.Context, addr broker.Address) (err error) {
	defer b.callErr(&err)
	if err := b.usable(); err != nil {
		return err
	}
	b.bindMu.Lock()
	bd := b.binds[addr]
	if bd == nil || bd.n == 0 {
		b.bindMu.Unlock()
		return nil
	}
	bd.n--
	if bd.n > 0 {
		b.bindMu.Unlock()
		return nil
	}
	if addr.Kind == broker.KindTopic {
		delete(b.binds, addr)
		b.bindMu.Unlock()
		if err := bd.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("tether/broker/nats: unsubscribing: %w", err)
		}
		return nil
	}
	bd.lame = time.AfterFunc(lameDuck, func() {
		defer b.recovered("unsubscribing a lame route")
		b.bindMu.Lock()
		defer b.bindMu.Unlock()
		if b.binds[addr] == bd && bd.n == 0 {
			delete(b.binds, addr)
			_ = bd.sub.Unsubscribe()
		}
	})
	b.bindMu.Unlock()
	if addr.Kind == broker.KindSession {
		return b.retireLog(ctx, addr.Name)
	}
	return nil
}

// retireLog flushes this node's writes to a session's log (appends and
// trims) to JetStream and forgets its copy.
func (b *Broker) retireLog(ctx context.Context, id string) error {
	if b.o.Durability == DurabilityNode {
		return b.retireNodeLog(ctx, id)
	}
	b.logMu.Lock()
	st := b.logs[id]
	delete(b.logs, id)
	b.logMu.Unlock()
	if st == nil {
		return nil
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	err := b.settle(ctx)
	switch {
	case st.moved.Load():
		b.handOnUnstored(ctx, st, "the session moved to another node while NATS was unreachable, before they were stored")
		return nil
	case err == nil || ctx.Err() == nil:
		err = st.repair(ctx, b)
	}
	if err != nil {
		// This node's copy is forgotten, and writing it later could
		// put it under the next holder's seqs: handed on instead.
		b.handOnUnstored(ctx, st, "the node let the session go and could not store them: "+err.Error())
		return err
	}
	if below := st.purgeTarget(); below > 0 {
		return b.purgeSubject(ctx, st.subject, below)
	}
	return nil
}

// Publish routes m. A session or client id is reached wherever it is bound,
// or parked for its session when none binds it (see package broker, Shared
// brokers). A topic reaches this node's subscribers, whose count Publish
// returns, and every other node's.
func (b *Broker) Publish(ctx context.Context, m *broker.Message) (_ int, err error) {
	defer b.callErr(&err)
	if err := b.usable(); err != nil {
		return 0, err
	}
	subj, err := b.subj.route(m.Target)
	if err != nil {
		return 0, err
	}
	if m.Target.Kind == broker.KindTopic {
		n, _ := b.deliverLocal(ctx, m, 0, chain{}) // a topic message is never refused
		if !b.nc.IsConnected() {
			return n, unavailable(fmt.Errorf("tether/broker/nats: NATS is unreachable (%s): the message reached this node's %d subscribers only; the other nodes' did not get it", b.nc.Status(), n))
		}
		if err := b.nc.PublishMsg(&nats.Msg{Subject: subj, Data: encodeMessage(nil, m, 0)}); err != nil {
			return n, fmt.Errorf("tether/broker/nats: publishing to other nodes: %w", err)
		}
		return n, nil
	}
	mark := b.mark()
	fails := b.appendFails.Load()
	switch n, err := b.deliverLocal(ctx, m, b.marks.last(m.Target), chain{}); {
	case err != nil:
		return 0, err // full: held here, so not parked
	case n > 0:
		return n, b.settleFor(ctx, mark, m)
	case b.appendFails.Load() != fails:
		return 0, unavailable(fmt.Errorf("tether/broker/nats: the message reached %s %q on this node, whose log append failed: it was not sent; retry", m.Target.Kind, m.Target.Name))
	}
	if !b.nc.IsConnected() {
		return 0, unavailable(fmt.Errorf("tether/broker/nats: NATS is unreachable (%s): the message was not sent; retry", b.nc.Status()))
	}
	rctx, cancel := b.bound(ctx)
	defer cancel()
	reply, err := b.ask(rctx, m.Target, &nats.Msg{Subject: subj, Data: encodeMessage(nil, m, 0), Header: b.marks.header(m.Target)})
	return b.routed(rctx, m, reply, err, true)
}

// routed returns what became of m, routed to its target's holder, from the
// holder's reply (or the request's error): m is parked when no live node
// holds its target, if it may be (parkable; else it reports errBehindFor,
// see pipeline.finish).
func (b *Broker) routed(ctx context.Context, m *broker.Message, reply []byte, err error, parkable bool) (int, error) {
	switch {
	case errors.Is(err, errNoHolder):
	case err != nil:
		return 0, fmt.Errorf("tether/broker/nats: routing to %s %q: %w; the message may or may not have arrived: retry with an idempotency key", m.Target.Kind, m.Target.Name, err)
	case string(reply) == replyFull:
		return 0, broker.ErrFull
	case string(reply) == replyBehind:
		return 0, errBehindFor(m)
	case strings.HasPrefix(string(reply), replyErr):
		return 0, unavailable(fmt.Errorf("tether/broker/nats: the node holding %s %q took the message but could not store it (%s); the message may or may not have arrived: retry with an idempotency key", m.Target.Kind, m.Target.Name, reply[len(replyErr):]))
	default:
		n, perr := strconv.Atoi(string(reply))
		if perr != nil {
			return 0, fmt.Errorf("tether/broker/nats: bad reply %q from the node holding %s %q", reply, m.Target.Kind, m.Target.Name)
		}
		if n > 0 {
			return n, nil
		}
	}
	if !parkable {
		return 0, errBehindFor(m)
	}
	return b.park(ctx, m)
}

// deliverLocal hands m to its Receiver if the node binds its target,
// first delivering what is parked for it when the node owes the address a
// drain (see binding.owed) or up to stream seq parked, m's park mark (see
// parkMarks): m's publisher parked that before it sent m, and m must not
// overtake it. Deliveries with a mark a drain dealt with already share
// that drain. It returns broker.ErrFull from the Receiver: the session is
// here, but full; and errBehind when f, a pipelined message's chain, says
// that an earlier message of its pipeline did not arrive here.
func (b *Broker) deliverLocal(ctx context.Context, m *broker.Message, parked uint64, f chain) (n int, err error) {
	b.bindMu.Lock()
	bd := b.binds[m.Target]
	live := bd != nil && bd.n > 0
	b.bindMu.Unlock()
	if !live {
		return 0, nil
	}
	if m.Target.Kind != broker.KindTopic && b.recheck.Load() {
		return 0, nil // not known to be ours yet since a reconnect: park
	}
	if f.pipe != "" {
		if !bd.chains.admit(f) {
			return 0, errBehind
		}
		defer func() { bd.chains.settle(f, n > 0 && err == nil) }()
	}
	if m.Target.Kind != broker.KindTopic && (parked > 0 || bd.owed.Load()) {
		bd.guard.Lock()
		defer bd.guard.Unlock()
		if bd.owed.Load() || parked > max(bd.cleared, bd.drained) {
			ctx, cancel := b.bound(ctx)
			_, err := b.drainLocked(ctx, m.Target, bd)
			cancel()
			if err != nil {
				// m must not overtake what is still parked: it is parked
				// behind it (the drain is tried again).
				b.o.Logger.Warn("tether: nats broker: delivering parked messages failed; parking behind them", "target", m.Target.Kind.String(), "err", err)
				return 0, nil
			}
			bd.cleared = max(bd.cleared, parked)
		}
	}
	return b.receiver.Deliver(m)
}

// answer is a delivery of message of whose publisher waits for its
// appends, issued with ids in (lo, hi], to be stored.
type answer struct {
	msg    *nats.Msg
	of     *broker.Message
	n      int
	lo, hi uint64
}

// answer answers deliveries in order, each once its appends are stored.
func (b *Broker) answer() {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case a := <-b.answers:
			b.answerOne(a)
		}
	}
}

func (b *Broker) answerOne(a answer) {
	defer b.recovered("answering deliveries")
	ctx, cancel := b.bound(context.Background())
	err := b.settleRange(ctx, a.lo, a.hi, a.of) // its own append's failure, not another's
	cancel()
	if err != nil {
		// Delivered but perhaps not stored: the publisher must not park
		// it (it would arrive twice), only retry.
		b.o.Logger.Warn("tether: nats broker: log append failed", "err", err)
		_ = a.msg.Respond([]byte(replyErr + err.Error()))
		return
	}
	_ = a.msg.Respond(strconv.AppendInt(nil, int64(a.n), 10))
}

// dispatch delivers what the routes of one shard receive, one message at a
// time so that each publisher's messages to an address keep their order.
// It takes the messages waiting in batches.
func (b *Broker) dispatch(ch <-chan *nats.Msg) {
	defer b.wg.Done()
	batch := make([]*nats.Msg, 0, dispatchBatch)
	for {
		select {
		case <-b.done:
			return
		case msg := <-ch:
			batch = append(batch[:0], msg)
		}
	more:
		for len(batch) < dispatchBatch {
			select {
			case msg := <-ch:
				batch = append(batch, msg)
			default:
				break more
			}
		}
		for i, msg := range batch {
			b.handle(msg)
			batch[i] = nil
		}
	}
}

// dispatchBatch is the most messages a dispatch shard takes at once.
const dispatchBatch = 256

// shard returns the dispatch queue of route subject subj.
func (b *Broker) shard(subj string) chan *nats.Msg {
	return b.shards[maphash.String(shardSeed, subj)%dispatchShards]
}

// shardSeed seeds the hash of route subjects to dispatch shards.
var shardSeed = maphash.MakeSeed()

func (b *Broker) handle(msg *nats.Msg) {
	defer b.recovered("delivering a routed message")
	addr, err := b.subj.parseRoute(msg.Subject)
	if err != nil {
		b.o.Logger.Warn("tether: nats broker: message on an unknown subject", "subject", msg.Subject)
		return
	}
	// Bounded (b.bound) where it waits for NATS: a delivery does not
	// pay for a timer it never needs.
	ctx := context.Background()
	b.bindMu.Lock()
	bd := b.binds[addr]
	live := bd != nil && bd.n > 0
	b.bindMu.Unlock()
	if !live {
		// Unbound a moment ago (lame), or a message that crossed the
		// unsubscription: the live holder, if any, answers.
		if msg.Reply != "" {
			_ = msg.Respond([]byte(replyLame))
		}
		return
	}
	switch msg.Header.Get(hdrOp) {
	case opPoke:
		if b.recheck.Load() {
			return // afterReconnect drains once ownership is checked
		}
		ctx, cancel := b.bound(ctx)
		defer cancel()
		bd.guard.Lock()
		_, err := b.drainLocked(ctx, addr, bd)
		bd.guard.Unlock()
		if err != nil {
			b.o.Logger.Warn("tether: nats broker: reading parked messages failed", "target", addr.Kind.String(), "err", err)
		}
	case opHandoff:
		b.handleHandoff(msg, addr)
	case opEvict:
		var e broker.Eviction
		reply := ""
		if err := json.Unmarshal(msg.Data, &e); err != nil {
			reply = "bad eviction: " + err.Error()
		} else if err := b.receiver.Evict(e); errors.Is(err, broker.ErrForeignClient) {
			reply = replyForeign
		} else if err != nil {
			reply = err.Error()
		}
		if q, ok := b.receiver.(broker.Quiescer); ok && e.Session != "" {
			// The session's work on its way may take a while: not on
			// this shard, whose other addresses it would hold up.
			b.goTracked("answering an eviction", func() {
				ctx, cancel := b.bound(context.Background())
				defer cancel()
				q.Quiesce(ctx, e.Session)
				b.answerEviction(ctx, msg, reply)
			})
			return
		}
		ctx, cancel := b.bound(ctx)
		defer cancel()
		b.answerEviction(ctx, msg, reply)
	default:
		m, _, err := decodeMessage(msg.Data)
		if err != nil || m.Target != addr {
			b.o.Logger.Warn("tether: nats broker: dropped an undecodable message", "subject", msg.Subject, "err", err)
			if msg.Reply != "" {
				_ = msg.Respond([]byte(replyErr + "undecodable message"))
			}
			return
		}
		before := b.mark()
		fails := b.appendFails.Load()
		n, err := b.deliverLocal(ctx, m, parkedSeq(msg), chainOf(msg))
		switch {
		case msg.Reply == "":
		case errors.Is(err, broker.ErrFull):
			_ = msg.Respond([]byte(replyFull))
		case errors.Is(err, errBehind):
			_ = msg.Respond([]byte(replyBehind))
		case n == 0 && b.appendFails.Load() != fails:
			// Refused by a failed log append: the publisher must
			// not park it as if no node held the session (it would
			// wait there, the publisher told it was delivered), but
			// retry.
			_ = msg.Respond([]byte(replyErr + "the session's log append failed"))
		default:
			b.answerStored(msg, m, n, before)
		}
	}
}

// answerEviction answers an eviction with reply once the appends issued so
// far (the evicted session's log, the keys of what it handled) are stored.
func (b *Broker) answerEviction(ctx context.Context, msg *nats.Msg, reply string) {
	if err := b.settle(ctx); err != nil && reply == "" {
		reply = "flushing the session's log: " + err.Error()
	}
	_ = msg.Respond([]byte(reply))
}

// goTracked runs f on a goroutine that Close waits for, unless the broker
// closed.
func (b *Broker) goTracked(what string, f func()) {
	b.bindMu.Lock() // Close waits for the goroutines it knows of
	defer b.bindMu.Unlock()
	if b.closed.Load() {
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer b.recovered(what)
		f()
	}()
}

// Evict sends e to the nodes holding e.Session and e.Client and waits for
// the first of each to act on it.
func (b *Broker) Evict(ctx context.Context, e broker.Eviction) (err error) {
	defer b.callErr(&err)
	if err := b.usable(); err != nil {
		return err
	}
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if e.Session != "" {
		err := b.evictOne(ctx, broker.Session(e.Session), body)
		if errors.Is(err, errNoHolder) && e.Node != "" {
			// Its holder may be cut off from NATS: it learns of the
			// move from the note once back, or, back already, from
			// the eviction asked again (see noteMove).
			if err := b.noteMove(ctx, e); err != nil {
				return err
			}
			err = b.evictOne(ctx, broker.Session(e.Session), body)
		}
		if err != nil && !errors.Is(err, errNoHolder) {
			return err
		}
	}
	if e.Client != "" {
		if err := b.evictOne(ctx, broker.Client(e.Client), body); err != nil && !errors.Is(err, errNoHolder) {
			return err
		}
	}
	return nil
}

// evictOne asks the holder of addr to act on the eviction in body. It
// returns errNoHolder when no live node holds addr: none answers, or the
// node the records name took the request and then failed its liveness
// check (it died, or NATS still routed to a connection it had lost). A
// dead holder serves nothing; one cut off from NATS learns of the move
// from the note (see Evict).
func (b *Broker) evictOne(ctx context.Context, addr broker.Address, body []byte) error {
	subj, err := b.subj.route(addr)
	if err != nil {
		return err
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	reply, err := b.ask(ctx, addr, &nats.Msg{Subject: subj, Data: body, Header: nats.Header{hdrOp: []string{opEvict}}})
	switch {
	case errors.Is(err, errNoHolder):
		return err
	case errors.As(err, new(holderGone)):
		return errNoHolder
	case err != nil:
		return fmt.Errorf("tether/broker/nats: evicting %s %q: %w", addr.Kind, addr.Name, err)
	case string(reply) == replyForeign:
		return broker.ErrForeignClient
	case len(reply) > 0:
		return fmt.Errorf("tether/broker/nats: evicting %s %q: the holder answered: %s", addr.Kind, addr.Name, reply)
	}
	return nil
}

// Close unsubscribes the node, stops delivering and waits for pending log
// writes (bounded by Timeout). A broker from Connect also closes its
// connection.
func (b *Broker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return broker.ErrClosed
	}
	b.bindMu.Lock()
	for addr, bd := range b.binds {
		if bd.lame != nil {
			bd.lame.Stop()
		}
		_ = bd.sub.Unsubscribe()
		delete(b.binds, addr)
	}
	b.bindMu.Unlock()
	b.asker.stop()
	close(b.done)
	b.wg.Wait()
	b.closeNodeLogs() // their waits would hold settle up
	if b.local != nil {
		_ = b.local.Close()
	}
	if b.started.Load() {
		ctx, cancel := b.bound(context.Background())
		_ = b.settle(ctx)
		cancel()
	}
	b.logMu.Lock()
	b.logs = make(map[string]*logState)
	b.logMu.Unlock()
	if b.ownsNC {
		b.nc.Close()
	}
	return nil
}

// subjects names the subjects and streams under one prefix.
type subjects struct {
	prefix              string
	logStream, kvStream string
}

func newSubjects(prefix string) subjects {
	up := strings.ToUpper(prefix)
	return subjects{prefix: prefix, logStream: up + "_LOG", kvStream: up + "_KV"}
}

var kindLetter = map[broker.Kind]string{broker.KindTopic: "t", broker.KindSession: "s", broker.KindClient: "c"}

func (s subjects) route(a broker.Address) (string, error) {
	l, ok := kindLetter[a.Kind]
	if !ok || a.Name == "" {
		return "", fmt.Errorf("tether/broker/nats: bad address %s %q", a.Kind, a.Name)
	}
	return s.prefix + ".r." + l + "." + token(a.Name), nil
}

func (s subjects) parseRoute(subj string) (broker.Address, error) {
	rest, ok := strings.CutPrefix(subj, s.prefix+".r.")
	if !ok || len(rest) < 3 || rest[1] != '.' {
		return broker.Address{}, errCorrupt
	}
	name, err := untoken(rest[2:])
	if err != nil {
		return broker.Address{}, err
	}
	for k, l := range kindLetter {
		if l[0] == rest[0] {
			return broker.Address{Kind: k, Name: name}, nil
		}
	}
	return broker.Address{}, errCorrupt
}

func (s subjects) log(id string) string { return s.prefix + ".log." + token(id) }

func (s subjects) park(a broker.Address) string {
	return s.prefix + ".park." + kindLetter[a.Kind] + "." + token(a.Name)
}

// liveness is the subject node answers on while its connection lives.
func (s subjects) liveness(node string) string { return s.prefix + ".node." + token(node) }

func (s subjects) record(id string) string   { return s.prefix + ".rec." + token(id) }
func (s subjects) clientID(id string) string { return s.prefix + ".cid." + token(id) }
func (s subjects) seen(digest string) string { return s.prefix + ".seen." + digest }

// parkClaim is the subject of the claim on a's parked messages: in the
// record stream, under P.seen (whose digests are hex, so never clash).
func (s subjects) parkClaim(a broker.Address) string {
	return s.prefix + ".seen.park_" + kindLetter[a.Kind] + "_" + token(a.Name)
}

// move is the subject of the note that a node is taking a session over
// (see noteMove): in the record stream, under P.seen like parkClaim.
func (s subjects) move(id string) string { return s.prefix + ".seen.move_" + token(id) }

// adopt is the subject of the claims on a session's adoption (see Claim):
// in the record stream, under P.seen like parkClaim.
func (s subjects) adopt(id string) string { return s.prefix + ".seen.adopt_" + token(id) }
