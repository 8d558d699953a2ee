package server

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/broker"
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// service serves TetherService.
type service struct {
	tetherv1.UnimplementedTetherServiceServer
	srv *Server
}

// Publish is the RPC form of Server.Publish.
func (svc *service) Publish(ctx context.Context, req *tetherv1.PublishRequest) (*tetherv1.PublishResponse, error) {
	if err := undecodable(req); err != nil {
		return nil, err
	}
	var to broker.Address
	switch t := req.GetTarget().(type) {
	case *tetherv1.PublishRequest_Topic:
		to = broker.Topic(t.Topic)
	case *tetherv1.PublishRequest_SessionId:
		to = broker.Session(t.SessionId)
	case *tetherv1.PublishRequest_ClientId:
		to = broker.Client(t.ClientId)
	}
	if err := validAddress(to); err != nil {
		return nil, err
	}
	if err := svc.srv.cfg.authz.Publish(ctx, to); err != nil {
		return nil, err
	}
	n, err := svc.srv.Publish(ctx, to, req.GetPayload(), req.GetIdempotencyKey(),
		WithContentType(req.GetContentType()), WithHeaders(req.GetHeaders()), WithCorrelationID(req.GetCorrelationId()))
	switch {
	case errors.Is(err, ErrDuplicate):
		return &tetherv1.PublishResponse{Duplicate: true}, nil
	case err != nil:
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, status.Errorf(codes.Unavailable, "publish failed: %s", withRetry(err))
	}
	return &tetherv1.PublishResponse{Delivered: uint32(n)}, nil
}

// withRetry is err's message, ending with advice to retry unless the
// message already gives its own (a broker's "retry with an idempotency
// key"), so that the advice is never doubled.
func withRetry(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "retry") {
		return msg
	}
	return msg + "; retry"
}
