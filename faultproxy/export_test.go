package faultproxy

import "time"

// Dropped returns the number of bytes discarded while blackholed or after
// an idle drop, so that tests can wait until the proxy has really consumed
// what they sent.
func (p *Proxy) Dropped() int64 { return p.dropped.Load() }

// ChunkDelay returns the delay the next chunk would be held for.
func (p *Proxy) ChunkDelay() time.Duration { return p.chunkDelay() }
