package system

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tetherhq/tether/profile"
)

// ClientConn opens a plaintext grpc ClientConn to addr with p's dial
// options and TCP dialer: the connection the grpc systems' clients share.
func ClientConn(addr string, p profile.Profile) (*grpc.ClientConn, error) {
	d := p.Dialer()
	return grpc.NewClient("passthrough:///"+addr, append(p.DialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }),
	)...)
}
