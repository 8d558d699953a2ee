package frames_test

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/internal/frames"
)

func TestTooLarge(t *testing.T) {
	t.Parallel()
	size, limit, ok := frames.TooLarge(status.Error(codes.ResourceExhausted, "grpc: received message larger than max (2097163 vs. 1114112)"))
	if !ok || size != 2097163 || limit != 1114112 {
		t.Errorf("TooLarge = %d, %d, %v; want 2097163, 1114112, true", size, limit, ok)
	}
	for _, err := range []error{
		status.Error(codes.Unavailable, "grpc: received message larger than max (2 vs. 1)"),
		status.Error(codes.ResourceExhausted, "slow consumer"),
		errors.New("received message larger than max (2 vs. 1)"),
	} {
		if _, _, ok := frames.TooLarge(err); ok {
			t.Errorf("TooLarge(%v) = true", err)
		}
	}
}
