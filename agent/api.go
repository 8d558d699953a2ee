package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetherhq/tether/client"
)

// route is one path of the API: its method and handler.
type route struct {
	method  string
	handler http.HandlerFunc
	limited bool // counts against the in-flight limits
}

// Handler returns the agent's HTTP API, for callers that serve it
// themselves (on a listener from ListenUnix or ListenLoopback only: the
// API lends the session to whoever reaches it). It starts the session.
func (a *Agent) Handler() http.Handler {
	a.start()
	return a.srv.Handler
}

// handler builds the API's handler.
func (a *Agent) handler() http.Handler {
	routes := map[string]route{
		"/v1/publish": {http.MethodPost, a.handlePublish, true},
		"/v1/request": {http.MethodPost, a.handleRequest, true},
		"/v1/events":  {http.MethodGet, a.handleEvents, false},
		"/v1/status":  {http.MethodGet, a.handleStatus, false},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := peerFrom(r.Context())
		if p.foreign {
			writeError(w, http.StatusForbidden, false, "the agent serves only the user it runs as")
			return
		}
		if msg := notLocal(r, p); msg != "" {
			writeError(w, http.StatusForbidden, false, msg)
			return
		}
		rt, ok := routes[r.URL.Path]
		switch {
		case !ok:
			paths := make([]string, 0, len(routes))
			for p, rt := range routes {
				paths = append(paths, rt.method+" "+p)
			}
			sort.Strings(paths)
			writeError(w, http.StatusNotFound, false, fmt.Sprintf("no such path %q: the agent serves %s", r.URL.Path, strings.Join(paths, ", ")))
			return
		case r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead):
			w.Header().Set("Allow", rt.method)
			writeError(w, http.StatusMethodNotAllowed, false, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, rt.method))
			return
		}
		if rt.limited {
			if code, msg := a.lim.acquire(p.caller); code != 0 {
				writeError(w, code, true, msg)
				return
			}
			defer a.lim.release(p.caller)
		}
		rt.handler(w, r)
	})
}

// notLocal says why r may come from a web page rather than a local
// program, or "" when it does not. A browser can send requests to a
// loopback port on behalf of any site: it marks them with Origin (or
// Sec-Fetch-Site), and a DNS-rebinding attack reaches the port under the
// attacker's host name, which a loopback Host header rules out.
func notLocal(r *http.Request, p peer) string {
	if !p.unix && !loopbackHost(r.Host) {
		return fmt.Sprintf("Host %q: the agent's HTTP port answers only to a loopback address or localhost", r.Host)
	}
	if o := r.Header.Get("Origin"); o != "" {
		return fmt.Sprintf("Origin %q: the agent does not serve web pages (requests from browsers are refused)", o)
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "cross-site", "same-site":
		return fmt.Sprintf("Sec-Fetch-Site %q: the agent does not serve web pages (requests from browsers are refused)", site)
	}
	return ""
}

// loopbackHost reports whether a Host header names a loopback address or
// localhost, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// apiError is the body of every error response.
type apiError struct {
	Error     string `json:"error"`
	Retryable bool   `json:"retryable"`
	// Reply is the responder's answer, for a 502 (the responder failed).
	Reply *Message `json:"reply,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, retryable bool, msg string) {
	writeJSON(w, code, apiError{Error: msg, Retryable: retryable})
}

// outgoing is the body of POST /v1/publish and POST /v1/request.
type outgoing struct {
	Topic       string            `json:"topic,omitempty"`
	SessionID   string            `json:"session_id,omitempty"`
	ClientID    string            `json:"client_id,omitempty"`
	Payload     *string           `json:"payload,omitempty"`
	PayloadB64  *string           `json:"payload_b64,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	// Publish only.
	CorrelationID  string `json:"correlation_id,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	Wait           bool   `json:"wait,omitempty"`
	// Request only: a Go duration ("5s", "250ms").
	Timeout string `json:"timeout,omitempty"`
}

// message turns o into an SDK message.
func (o *outgoing) message() (client.Message, error) {
	m := client.Message{Topic: o.Topic, SessionID: o.SessionID, ClientID: o.ClientID, ContentType: o.ContentType, Headers: o.Headers,
		CorrelationID: o.CorrelationID, IdempotencyKey: o.IdempotencyKey}
	switch {
	case o.Payload != nil && o.PayloadB64 != nil:
		return m, errors.New(`give "payload" (text) or "payload_b64" (base64), not both`)
	case o.Payload != nil:
		m.Payload = []byte(*o.Payload)
	case o.PayloadB64 != nil:
		b, err := base64.StdEncoding.DecodeString(*o.PayloadB64)
		if err != nil {
			return m, fmt.Errorf(`"payload_b64": not standard base64: %v`, err)
		}
		m.Payload = b
	}
	return m, nil
}

// decode reads the JSON body into v, strictly, within the body's size and
// time bounds; on failure it writes the error response and returns false.
func (a *Agent) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if !jsonContentType(r.Header.Get("Content-Type")) {
		// Browsers send a form or text/plain to any site without asking
		// first (no CORS preflight): only JSON is taken, so a web page
		// cannot reach the agent with a simple request.
		writeError(w, http.StatusUnsupportedMediaType, false, fmt.Sprintf("Content-Type %q: send JSON with Content-Type: application/json (curl: --json, or -H 'Content-Type: application/json')", r.Header.Get("Content-Type")))
		return false
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(a.cfg.bodyTimeout))
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, a.cfg.maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more data after the JSON object")
	} else if err == nil {
		if _, e := dec.Token(); e != io.EOF {
			err = errors.New("more data after the JSON object")
		}
	}
	if err == nil {
		// net/http reads on in the background to notice a hang-up, and an
		// expired deadline there would cancel the request's context.
		_ = rc.SetReadDeadline(time.Time{})
		return true
	}
	var tooBig *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, false, fmt.Sprintf("the request body is larger than %d bytes", tooBig.Limit))
	case errors.As(err, &ne) && ne.Timeout():
		writeError(w, http.StatusRequestTimeout, true, fmt.Sprintf("reading the request body took longer than %v", a.cfg.bodyTimeout))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, false, "empty body: send a JSON object")
	default:
		writeError(w, http.StatusBadRequest, false, "bad JSON body: "+err.Error())
	}
	return false
}

// jsonContentType reports whether ct is application/json, with at most a
// charset parameter of UTF-8.
func jsonContentType(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// sendError writes the response for a failed send of the SDK.
func sendError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, client.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, false, err.Error())
	case errors.Is(err, client.ErrBufferFull), errors.Is(err, client.ErrDropped):
		writeError(w, http.StatusServiceUnavailable, true, err.Error())
	case errors.Is(err, client.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, false, "the agent's session has ended: "+err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, true, "the server did not acknowledge the message in time (the agent may be reconnecting); it stays queued and may still be delivered")
	case errors.As(err, new(*client.SendError)): // the server refused it, after the SDK's re-sends
		writeRefusal(w, err)
	case strings.HasPrefix(err.Error(), "tether/client:"):
		writeError(w, http.StatusBadRequest, false, err.Error()) // the SDK's validation: no target, a bad topic
	default: // an Error frame from the server for this message
		writeRefusal(w, err)
	}
}

// writeRefusal writes the response for a message the server refused, with
// the HTTP status of its gRPC code.
func writeRefusal(w http.ResponseWriter, err error) {
	code, retryable := refusalStatus(status.Code(err))
	msg := err.Error()
	var se *client.SendError
	if errors.As(err, &se) {
		err = se.Err
	}
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
		if se != nil && se.Attempts > 1 {
			msg += fmt.Sprintf(" (after %d attempts)", se.Attempts)
		}
	}
	writeError(w, code, retryable, "the server refused the message: "+msg)
}

// refusalStatus is the HTTP status, and whether a retry may succeed, for
// the gRPC code of an Error frame the server answered a message with.
func refusalStatus(c codes.Code) (int, bool) {
	switch c {
	case codes.NotFound: // no session for the session or client id
		return http.StatusNotFound, false
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		return http.StatusBadRequest, false
	case codes.PermissionDenied, codes.Unauthenticated:
		return http.StatusForbidden, false
	case codes.ResourceExhausted, codes.Unavailable, codes.Aborted:
		return http.StatusServiceUnavailable, true
	default:
		return http.StatusBadGateway, false
	}
}

// publishResult is the body of a successful POST /v1/publish.
type publishResult struct {
	// Acked is true when the caller asked to wait and the server has the
	// message; false when it is queued in the agent's session.
	Acked bool `json:"acked"`
}

// handlePublish serves POST /v1/publish: queue a message (202), or with
// "wait": true send it and wait for the server's ack (200).
func (a *Agent) handlePublish(w http.ResponseWriter, r *http.Request) {
	var o outgoing
	if !a.decode(w, r, &o) {
		return
	}
	if o.Timeout != "" {
		writeError(w, http.StatusBadRequest, false, `"timeout" is for /v1/request; a publish with "wait" is bounded by the agent's request timeout`)
		return
	}
	m, err := o.message()
	if err != nil {
		writeError(w, http.StatusBadRequest, false, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.requestTimeout)
	defer cancel()
	if !o.Wait {
		if err := a.s.Send(ctx, m); err != nil {
			sendError(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, publishResult{})
		return
	}
	if err := a.s.SendWait(ctx, m); err != nil {
		sendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, publishResult{Acked: true})
}

// ReplyErrorHeader is the header a responder sets on a reply that reports
// a failure (tether reply does, with the command's exit status and the
// tail of its stderr); the agent answers such a reply with 502 and the
// header's value as the error.
const ReplyErrorHeader = "tether-error"

// handleRequest serves POST /v1/request: send a request and return its
// reply, or a clear error.
func (a *Agent) handleRequest(w http.ResponseWriter, r *http.Request) {
	var o outgoing
	if !a.decode(w, r, &o) {
		return
	}
	if o.CorrelationID != "" || o.IdempotencyKey != "" || o.Wait {
		writeError(w, http.StatusBadRequest, false, `"correlation_id", "idempotency_key" and "wait" are for /v1/publish: a request gets its own`)
		return
	}
	timeout := a.cfg.requestTimeout
	if o.Timeout != "" {
		d, err := time.ParseDuration(o.Timeout)
		if err != nil || d <= 0 || d > a.cfg.maxRequestTimeout {
			writeError(w, http.StatusBadRequest, false, fmt.Sprintf(`"timeout" %q: want a duration such as "5s", positive and at most %v`, o.Timeout, a.cfg.maxRequestTimeout))
			return
		}
		timeout = d
	}
	m, err := o.message()
	if err == nil && m.Topic == "" && m.SessionID == "" && m.ClientID == "" {
		err = errors.New(`no target: set "topic", "session_id" or "client_id"`)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, false, err.Error())
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout + 10*time.Second))
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	reply, err := a.calls.do(ctx, m, a.s.SendWait)
	switch {
	case err == nil:
		body := NewMessage(reply)
		if e, ok := reply.Headers[ReplyErrorHeader]; ok {
			writeJSON(w, http.StatusBadGateway, apiError{Error: "the responder failed: " + e, Reply: &body})
			return
		}
		writeJSON(w, http.StatusOK, body)
	case r.Context().Err() != nil:
		// The caller hung up: nobody reads an answer.
	case errors.Is(err, errRetryable):
		writeError(w, http.StatusServiceUnavailable, true, strings.TrimPrefix(err.Error(), errRetryable.Error()+": "))
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, true, fmt.Sprintf("no reply within %v (is a responder subscribed to the target? is the agent connected?); the request may still be handled", timeout))
	case strings.HasPrefix(err.Error(), "the agent's session ended"):
		writeError(w, http.StatusServiceUnavailable, false, err.Error())
	default:
		sendError(w, err)
	}
}

// Message is the JSON form of a message the agent's session received:
// the body of a 200 from POST /v1/request (the reply), the "reply" of a
// 502, and the data of a "message" event. `tether connect` prints
// messages in the same form (see cmd/tether).
type Message struct {
	Seq           uint64            `json:"seq,omitempty"`
	Topic         string            `json:"topic,omitempty"`
	Payload       *string           `json:"payload,omitempty"`     // when the payload is UTF-8
	PayloadB64    string            `json:"payload_b64,omitempty"` // otherwise, standard base64
	ContentType   string            `json:"content_type,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
	SourceSession string            `json:"source_session,omitempty"`
	SourceClient  string            `json:"source_client,omitempty"`
	CorrelationID string            `json:"correlation_id,omitempty"`
	PublishedAt   *time.Time        `json:"published_at,omitempty"` // RFC 3339, with nanoseconds
}

// NewMessage returns the JSON form of m.
func NewMessage(m *client.Message) Message {
	j := Message{Seq: m.Seq, Topic: m.Topic, ContentType: m.ContentType, Headers: m.Headers,
		SourceSession: m.SourceSession, SourceClient: m.SourceClient, CorrelationID: m.CorrelationID}
	if utf8.Valid(m.Payload) {
		s := string(m.Payload)
		j.Payload = &s
	} else {
		j.PayloadB64 = base64.StdEncoding.EncodeToString(m.Payload)
	}
	if !m.PublishedAt.IsZero() {
		t := m.PublishedAt
		j.PublishedAt = &t
	}
	return j
}

// stateJSON is a state change of the session, as an event's data.
type stateJSON struct {
	State        string    `json:"state"`
	Backend      string    `json:"backend,omitempty"`
	SessionID    string    `json:"session_id,omitempty"`
	Resumed      *bool     `json:"resumed,omitempty"`
	ResumeStatus string    `json:"resume_status,omitempty"`
	Error        string    `json:"error,omitempty"`
	Time         time.Time `json:"time"`
}

func newStateJSON(c client.StateChange) stateJSON {
	j := stateJSON{State: c.State.String(), Backend: c.Backend, SessionID: c.SessionID, Time: c.Time}
	if c.State == client.StateConnected {
		resumed := c.Resumed
		j.Resumed, j.ResumeStatus = &resumed, c.ResumeStatus.String()
	}
	if c.Err != nil {
		j.Error = c.Err.Error()
	}
	return j
}

// Status is the body of GET /v1/status.
type Status struct {
	State      string  `json:"state"`
	Backend    string  `json:"backend,omitempty"`
	SessionID  string  `json:"session_id,omitempty"`
	RTTMillis  float64 `json:"rtt_ms"`
	Reconnects int     `json:"reconnects"`
	LastError  string  `json:"last_error,omitempty"`
	// Resumed and ResumeStatus are the outcome of the latest stream's
	// start; FreshSessions counts the sessions the server opened (the
	// first one included): more than one means a resume failed.
	Resumed       bool   `json:"resumed"`
	ResumeStatus  string `json:"resume_status,omitempty"`
	FreshSessions int    `json:"fresh_sessions"`
	// Unacked and Queued are the session's sends waiting for an ack and
	// waiting to be written.
	Unacked int `json:"unacked"`
	Queued  int `json:"queued"`
	// InFlight, Replied and LateReplies count requests: waiting now,
	// answered, and replies dropped because their call had ended.
	InFlight    int `json:"in_flight"`
	Replied     int `json:"replied"`
	LateReplies int `json:"late_replies"`
	// FirstEventID and LastEventID are the events still buffered (0 when
	// none); EventReaders the open event streams.
	FirstEventID uint64 `json:"first_event_id"`
	LastEventID  uint64 `json:"last_event_id"`
	EventReaders int    `json:"event_readers"`
}

// Status returns a snapshot of the agent and its session.
func (a *Agent) Status() Status {
	st := a.s.Stats()
	a.mu.Lock()
	last, fresh := a.last, a.sessions
	a.mu.Unlock()
	s := Status{State: st.State.String(), Backend: st.Backend, SessionID: st.SessionID,
		RTTMillis: float64(st.RTT.Microseconds()) / 1000, Reconnects: st.Reconnects,
		Resumed: last.Resumed, FreshSessions: fresh, Unacked: st.Unacked, Queued: st.Queued}
	if st.LastError != nil {
		s.LastError = st.LastError.Error()
	}
	if last.State == client.StateConnected {
		s.ResumeStatus = last.ResumeStatus.String()
	}
	s.InFlight, s.Replied, s.LateReplies = a.calls.counts()
	s.FirstEventID, s.LastEventID = a.events.bounds()
	s.EventReaders = a.events.readerCount()
	return s
}

// handleStatus serves GET /v1/status.
func (a *Agent) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.Status())
}
