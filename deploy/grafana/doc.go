// Package grafana holds the Grafana dashboard; its test checks that every
// series the dashboard queries exists.
//
// tether.json graphs the tether_ series of a [server.Server] (README
// "Metrics"), the gRPC server metrics of go-grpc-middleware's
// providers/prometheus, and the Go and process collectors that tetherd
// registers. The test parses every query in it and fails if a query names a
// series nothing exports, or if the server registers a tether_ series that no
// panel graphs. README.md in this directory says how to import it.
//
// [server.Server]: https://pkg.go.dev/github.com/tetherhq/tether/server#Server
package grafana
