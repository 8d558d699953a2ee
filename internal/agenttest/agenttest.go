// Package agenttest calls a tether agent's HTTP API (package agent, or
// `tether agent`) in tests.
package agenttest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// UnixClient is an HTTP client that opens a new connection to the Unix
// socket sock for every call, as a short-lived process would.
func UnixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}}
}

// Call sends body (JSON text, with Content-Type: application/json) to path
// on the agent hc reaches and returns the status and the decoded JSON
// answer, which must be an object.
func Call(ctx context.Context, hc *http.Client, method, path, body string) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("response %d %q is not a JSON object: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, out, nil
}
