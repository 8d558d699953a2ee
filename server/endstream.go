package server

import (
	"context"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// An idle stream holds one goroutine, as a raw gRPC stream does: its
// handler goroutine is also its reader. A reader blocked in Recv on a
// client that sends nothing, and a writer blocked in Send on one that
// reads nothing, return only once the stream is done; for the server to
// end a stream whose handler goroutine is blocked in Recv, it must end it
// from another goroutine, with the status it chooses.
//
// Cancelling the stream's context is not enough: grpc-go's RecvMsg and
// SendMsg then write CANCELLED as the stream's status before the handler
// can return its own. (A grpc.InTapHandle can make that context
// cancellable; a stats.Handler's TagRPC cannot, as the transport takes its
// Done channel before TagRPC runs.) What grpc-go does when a handler
// returns is write the status, which ends the stream and cancels its
// context; finish does the same through endWith, with the transport
// stream's WriteStatus (grpc-go's RecvMsg calls it too, from the handler
// goroutine, while another goroutine may be sending). The handler then
// returns the same status, which grpc-go finds already written: a stream
// interceptor sees the status the stream ended with, but one that rewrites
// the handler's error cannot change what the client got (as with a Recv
// or Send that grpc-go failed itself). While the session opens
// (phaseOpening, see run), finish leaves the stream to the handler's
// return instead, so that the open runs to its end with the stream's
// context alive, as it always did.
//
// grpc-go's transport stream is internal; its WriteStatus is found by
// asserting statusWriter on the grpc.ServerTransportStream of the stream's
// context. When that fails (another grpc-go version), or the stream is
// served through grpc.Server.ServeHTTP, whose WriteStatus waits on the
// connection's serving goroutine, streamEnder returns nil and the stream
// keeps the other way: a reader goroutine of its own while the
// handler goroutine only waits, so that it can return.
// TestIdleStreamHoldsOneGoroutine fails if the assertion stops holding.

// statusWriter is what grpc-go's server transport stream offers to write a
// stream's status and end it.
type statusWriter interface {
	WriteStatus(*status.Status) error
}

// streamEnder returns what writes the status of the stream of ctx, or nil
// when finish cannot end it without the handler returning.
func streamEnder(ctx context.Context) statusWriter {
	if ctx.Value(http.ServerContextKey) != nil {
		return nil // served through ServeHTTP
	}
	w, _ := grpc.ServerTransportStreamFromContext(ctx).(statusWriter)
	return w
}

// endWith writes err's status as the stream's own, as grpc-go would when
// Connect returns err: that ends the stream and cancels its context, which
// unblocks the reader (in Connect) and a writer stuck in Send.
func (st *stream) endWith(err error) {
	s, ok := status.FromError(err)
	switch {
	case err == nil:
		s = status.New(codes.OK, "")
	case !ok:
		s = status.FromContextError(err)
	}
	// It fails only when the stream or its connection already ended.
	_ = st.ender.WriteStatus(s)
}
