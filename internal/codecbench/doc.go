// Package codecbench holds only benchmarks: the cost of encoding and
// decoding tether's frames (gen/tether/v1) beside a bare protobuf message
// carrying the same payload, through grpc-go's own protobuf codec. It has
// no API.
//
//	go test -run '^$' -bench . -benchmem ./internal/codecbench/
package codecbench
