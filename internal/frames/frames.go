// Package frames recognises grpc-go's refusal of a message above its
// receive limit, so that tether can say which of its own limits that is
// and how to raise it.
package frames

import (
	"regexp"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Overhead is the room a server leaves above its largest payload for the
// frame around it: Limits.max_frame_bytes is max_message_bytes plus this.
const Overhead = 64 << 10

// RecvFactor is the server's gRPC receive limit over Limits.max_frame_bytes:
// a frame somewhat above max_frame_bytes reaches tether, which refuses it
// naming the limit; only one above RecvFactor times it is refused by gRPC.
const RecvFactor = 2

// FrameLimit is the max_frame_bytes of a server whose gRPC receive limit
// (the limit TooLarge reports) is recvLimit.
func FrameLimit(recvLimit int) int { return recvLimit / RecvFactor }

// tooLarge matches grpc-go's "grpc: received message larger than max (N
// vs. M)" and its "trying to send message larger than max".
var tooLarge = regexp.MustCompile(`message larger than max \((\d+) vs\. (\d+)\)`)

// TooLarge reports whether err is grpc-go's refusal of a message above
// its limit, with the message's size and the limit, in bytes.
func TooLarge(err error) (size, limit int, ok bool) {
	st, isStatus := status.FromError(err)
	if !isStatus || st.Code() != codes.ResourceExhausted {
		return 0, 0, false
	}
	m := tooLarge.FindStringSubmatch(st.Message())
	if m == nil {
		return 0, 0, false
	}
	size, err1 := strconv.Atoi(m[1])
	limit, err2 := strconv.Atoi(m[2])
	return size, limit, err1 == nil && err2 == nil
}
