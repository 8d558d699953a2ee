package server

import (
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// The receive window of a Hello that states none (or a zero field): small
// enough that a client written by hand (grpcurl) is not flooded, large
// enough that a reader acking every half window on loopback is not slowed
// (256 messages per round trip).
const (
	defaultWindowMessages = 256
	defaultWindowBytes    = 1 << 20
)

// window bounds what a stream has sent and not had acknowledged: at most
// messages messages and bytes payload bytes (see frames.proto "Flow
// control").
type window struct {
	messages int
	bytes    int
}

// grantWindow returns the window Hello asks for, clamped: messages into
// [1, max_outbound_queue], bytes into [1, max_outbound_bytes]; a zero
// field asks for the default.
func (srv *Server) grantWindow(h *tetherv1.Hello) window {
	w := window{messages: defaultWindowMessages, bytes: defaultWindowBytes}
	if rw := h.GetReceiveWindow(); rw != nil {
		if rw.GetMessages() > 0 {
			w.messages = int(rw.GetMessages())
		}
		if rw.GetBytes() > 0 {
			w.bytes = int(rw.GetBytes())
		}
	}
	w.messages = min(w.messages, srv.cfg.maxOutboundQueue)
	w.bytes = min(w.bytes, srv.cfg.maxOutboundBytes)
	return w
}

func (w window) proto() *tetherv1.ReceiveWindow {
	return &tetherv1.ReceiveWindow{Messages: uint32(w.messages), Bytes: uint32(w.bytes)}
}

// setWindow sets the stream's window, before its writer starts.
func (st *stream) setWindow(w window) {
	st.mu.Lock()
	st.win = w
	st.mu.Unlock()
}

// openLocked reports whether the window takes one more message of size
// payload bytes: one always goes when nothing is in flight.
func (st *stream) openLocked(size int) bool {
	n := st.flight.len()
	return n == 0 || n < st.win.messages && st.flightBytes+size <= st.win.bytes
}

// sendableLocked reports whether a queued message may be written now.
func (st *stream) sendableLocked() bool {
	e, ok := st.data.front()
	return ok && st.openLocked(len(e.Message.Payload))
}

// acked releases the messages up to seq from the window and wakes the
// writer if that lets a queued message go.
func (st *stream) acked(seq uint64) {
	st.mu.Lock()
	for {
		m, ok := st.flight.front()
		if !ok || m.seq > seq {
			break
		}
		st.flight.pop()
		st.flightBytes -= m.size
	}
	st.unlockAndWake()
}

// pushGap drops the queued messages the Gap reports lost and queues the
// Gap, ahead of the messages still queued (or extends the queued Gap
// that it continues). Lost messages already in flight
// stay in the window until the client acks past them.
func (st *stream) pushGap(g *tetherv1.Gap) {
	st.mu.Lock()
	for {
		e, ok := st.data.front()
		if !ok || e.Seq > g.GetLost().GetLast() {
			break
		}
		st.data.pop()
	}
	if p := st.pendingGap; p != nil && p.GetLost().GetLast()+1 == g.GetLost().GetFirst() {
		// Not written yet: it grows instead, so that drops for a client
		// that does not read cannot fill the control queue.
		p.Lost.Last, p.Reason = g.GetLost().GetLast(), g.GetReason()
		st.mu.Unlock()
		return
	}
	st.pendingGap = g
	st.ctrl.push(&tetherv1.ConnectResponse{Frame: &tetherv1.ConnectResponse_Gap{Gap: g}})
	st.unlockAndWake()
}
