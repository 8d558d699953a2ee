package ratelimit

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	grpcratelimit "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

var _ grpcratelimit.Limiter = (*Limiter)(nil)

// A Limiter is a token bucket per key: each key may make calls at r per
// second on average, and up to burst at once. It is safe for concurrent
// use.
type Limiter struct {
	key   func(context.Context) string
	r     rate.Limit
	burst int
	opts  *options

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     list.List                // of *bucket, most recently used first
}

type bucket struct {
	key      string
	lim      *rate.Limiter
	lastUsed time.Time
}

// New returns a limiter that allows each key r calls per second on
// average and burst at once. key maps a call's context to its key, usually
// the authenticated principal; every context that yields the same string,
// including "", shares one bucket. key must not be nil, r must be positive
// (rate.Inf allows everything) and burst at least 1.
func New(key func(context.Context) string, r rate.Limit, burst int, opts ...Option) (*Limiter, error) {
	switch {
	case key == nil:
		return nil, errors.New("ratelimit: nil key function")
	case !(r > 0): // also rejects NaN
		return nil, fmt.Errorf("ratelimit: rate %v, want > 0", r)
	case burst < 1:
		return nil, fmt.Errorf("ratelimit: burst %d, want at least 1", burst)
	}
	o, err := evaluate(opts, refillTime(r, burst))
	if err != nil {
		return nil, err
	}
	return &Limiter{key: key, r: r, burst: burst, opts: o, buckets: make(map[string]*list.Element)}, nil
}

// Limit takes a token from the bucket of ctx's key. It returns nil if there
// was one, and otherwise a ResourceExhausted status error that names the
// key and the delay until the next token, with that delay also in an
// errdetails.RetryInfo detail. A rejected call takes no token.
func (l *Limiter) Limit(ctx context.Context) error {
	key := l.key(ctx)
	now := l.opts.now()
	lim := l.bucket(key, now)
	res := lim.ReserveN(now, 1)
	if !res.OK() { // cannot happen with burst ≥ 1, but never allow on doubt
		return l.exhausted(key, refillTime(l.r, 1))
	}
	delay := res.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	res.CancelAt(now)
	return l.exhausted(key, delay)
}

// Len returns the number of keys the limiter holds.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// bucket returns key's bucket, creating it if needed, after dropping the
// keys idle since before now minus the idle timeout.
func (l *Limiter) bucket(key string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evictIdleLocked(now)
	if e, ok := l.buckets[key]; ok {
		b := e.Value.(*bucket)
		b.lastUsed = now
		l.lru.MoveToFront(e)
		return b.lim
	}
	if len(l.buckets) >= l.opts.maxKeys {
		l.removeLocked(l.lru.Back())
	}
	b := &bucket{key: key, lim: rate.NewLimiter(l.r, l.burst), lastUsed: now}
	l.buckets[key] = l.lru.PushFront(b)
	return b.lim
}

// evictIdleLocked drops the keys unused since now minus the idle timeout.
// They are at the back of the list, so this stops at the first key in use.
func (l *Limiter) evictIdleLocked(now time.Time) {
	cutoff := now.Add(-l.opts.idle)
	for e := l.lru.Back(); e != nil && !e.Value.(*bucket).lastUsed.After(cutoff); e = l.lru.Back() {
		l.removeLocked(e)
	}
}

func (l *Limiter) removeLocked(e *list.Element) {
	delete(l.buckets, e.Value.(*bucket).key)
	l.lru.Remove(e)
}

// exhausted returns the error for a call by key rejected for delay.
func (l *Limiter) exhausted(key string, delay time.Duration) error {
	st := status.New(codes.ResourceExhausted, fmt.Sprintf(
		"too many calls for principal %q: at most %s/s, retry after %v",
		key, strconv.FormatFloat(float64(l.r), 'g', -1, 64), roundUp(delay, 100*time.Millisecond)))
	if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// roundUp rounds d up to a multiple of m.
func roundUp(d, m time.Duration) time.Duration {
	if r := d % m; r != 0 {
		return d + m - r
	}
	return d
}

// refillTime is how long an empty bucket of size n takes to fill at r,
// capped at the largest Duration.
func refillTime(r rate.Limit, n int) time.Duration {
	if r == rate.Inf {
		return 0
	}
	secs := float64(n) / float64(r)
	if secs >= float64(math.MaxInt64)/float64(time.Second) {
		return math.MaxInt64
	}
	return time.Duration(secs * float64(time.Second))
}
