// Package auth authenticates tether's gRPC callers and authorizes what
// their sessions do.
//
// Authentication turns a call's credentials into a [Principal] in the
// call's context. It is done by an [AuthFunc], the go-grpc-middleware v2
// auth.AuthFunc, run by that package's interceptors when a stream starts:
// [BearerAuth] checks "authorization: bearer TOKEN" metadata against a
// [TokenStore], [MTLSAuth] checks a verified client certificate, and
// [Chain] tries several in order. Applications with their own credentials
// (a JWT, say; see the example) write an AuthFunc that calls
// [NewContext].
//
// Authorization is done by [Authorizer], which implements the server's
// Authorizer interface from the Principal in the context: may the stream
// connect, subscribe to a topic, publish to an address, call AdminService,
// and when do its credentials expire.
//
// # Wiring
//
//	store, err := auth.LoadTokens("/etc/tether/tokens.json")
//	...
//	hupDone := auth.WatchSIGHUP(ctx, store, logger) // kill -HUP reloads the file
//	authn := auth.Chain(auth.MTLSAuth(auth.CertMapping(store)), auth.BearerAuth(store))
//	notHealth := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
//		return c.Service != healthpb.Health_ServiceDesc.ServiceName
//	})
//	srv, err := server.New(server.WithAuthorizer(auth.Authorizer{}), server.WithPrincipal(auth.Name), ...)
//	gs := grpc.NewServer(append(srv.GRPCServerOptions(),
//		grpc.Creds(credentials.NewTLS(tlsConfig)), // ClientAuth: tls.VerifyClientCertIfGiven for mTLS or bearer
//		grpc.ChainStreamInterceptor(selector.StreamServerInterceptor(grpcauth.StreamServerInterceptor(authn), notHealth)),
//		grpc.ChainUnaryInterceptor(selector.UnaryServerInterceptor(grpcauth.UnaryServerInterceptor(authn), notHealth)),
//	)...)
//	err = srv.Start(ctx) // starts the broker
//	srv.Register(gs)
//
// (grpcauth, selector and interceptors are packages of
// github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors.)
//
// Both interceptors are needed: sessions are streams, but AdminService and
// Publish are unary calls. [Name] binds each session to its principal, so
// one principal cannot resume another's session.
//
// # Expiry
//
// The interceptors authenticate a stream once, when it starts. A
// Principal's Expires (from the token file, a JWT's exp, or a client
// certificate's NotAfter) is therefore enforced during the stream by the
// server through [Authorizer.Expires]; calls made after it are refused
// with Unauthenticated.
//
// # Token file
//
// [LoadTokens] reads a JSON file that lists the principals:
//
//	{
//	  "principals": [
//	    {
//	      "name": "svc-a",
//	      "token_sha256": "505802eb194196f78e881462602171db26bb642e9b33db973d1fb0ad5d7c4860",
//	      "connect": true,
//	      "publish": ["fleet."],
//	      "publish_direct": true,
//	      "subscribe": ["svc.a."],
//	      "admin": false,
//	      "expires": "2030-01-01T00:00:00Z"
//	    },
//	    {"name": "billing-backend", "token_sha256": "…", "publish_direct": true, "rate_exempt": true},
//	    {"name": "ops", "token_sha256": "…", "admin": true}
//	  ]
//	}
//
// The fields of a principal:
//
//   - name (required, unique): the principal's name. It is sent back in
//     errors and logs, binds sessions, and is what a client certificate's
//     CN or SAN must match (see [CertMapping]).
//   - token_sha256: the lower- or upper-case hex SHA-256 of the bearer
//     token (64 digits). The file holds only hashes, never tokens. Empty or
//     absent means the principal has no token and can only authenticate
//     with a certificate. Two principals may not share a token.
//   - connect: may open sessions. Default false.
//   - publish: topic prefixes the principal may send to; "*" means every
//     topic. Default none.
//   - publish_direct: may send to session ids and client ids. Default
//     false.
//   - subscribe: topic prefixes the principal may subscribe to; "*" means
//     every topic. Default none.
//   - admin: may call AdminService, and use tetherd's admin endpoints
//     and web console (kick and drain included) beyond loopback. Default
//     false.
//   - admin_read: may look at tetherd's web console beyond loopback,
//     without its kick and drain actions. Default false.
//   - rate_exempt: never limited by the per-principal call rates
//     (tetherd's --rate and --publish-rate; see [RateExempt]). Meant for
//     the services you run, such as a backend that publishes for many
//     users; leave it off for devices and users, whom the limits protect
//     the node from. Default false.
//   - expires: an RFC 3339 time after which the principal's credentials
//     are refused. Absent means never.
//
// A prefix matches by plain string prefix: "fleet." matches "fleet.x", and
// "svc.a" would match "svc.ab" too, so end prefixes with a separator. Empty
// prefixes and globs such as "fleet.*" are rejected. Unknown fields are
// rejected, so a misspelt permission is an error rather than a silent
// denial. Every error names the entry and the field.
//
// # Tokens
//
// A token should be random with at least 128 bits of entropy, because the
// file stores a plain, unsalted SHA-256 that is only safe to expose for
// such tokens. To make one and its hash with standard tools:
//
//	TOKEN=$(openssl rand -hex 32)
//	printf %s "$TOKEN" | sha256sum   # the token_sha256; note printf, not echo
//
// or call [HashToken]. Lookups compare hashes in constant time (see
// [TokenStore.Lookup]).
//
// # Reloading
//
// [TokenStore.Reload] re-reads the file and swaps the principals in
// atomically; [WatchSIGHUP] calls it on each SIGHUP. A file that does not
// load is reported and the old principals stay. A reload changes only who
// may start a stream: streams already open keep the Principal they
// authenticated with, so a revoked token ends its sessions only when they
// next reconnect (or at their Expires).
package auth
