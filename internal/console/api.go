package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
	"github.com/tetherhq/tether/profile"
	"github.com/tetherhq/tether/server"
)

// overviewJSON is the node at one moment.
type overviewJSON struct {
	ServerID   string            `json:"serverId"`
	Now        int64             `json:"now"`
	Ready      bool              `json:"ready"`
	ReadyError string            `json:"readyError,omitempty"`
	Draining   bool              `json:"draining"`
	Streams    int               `json:"streams"`
	Broker     brokerJSON        `json:"broker"`
	Profile    profileJSON       `json:"profile"`
	Sessions   map[string]int    `json:"sessions"`
	Resumes    map[string]uint64 `json:"resumes"`
	CanAct     bool              `json:"canAct"`
	CanDrain   bool              `json:"canDrain"`
	Principal  string            `json:"principal,omitempty"`
	CSRF       string            `json:"csrf"`
}

type brokerJSON struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

type profileJSON struct {
	Name              string  `json:"name"`
	IntervalMS        int64   `json:"intervalMs"`
	Misses            int     `json:"misses"`
	GraceMS           int64   `json:"graceMs"`
	DetectionMS       int64   `json:"detectionMs"`
	HeartbeatsPerHour float64 `json:"heartbeatsPerHour"`
	NATSafe           bool    `json:"natSafe"`
	KeepaliveMS       int64   `json:"keepaliveMs"`
	TCPIdleMS         int64   `json:"tcpIdleMs"`
}

func (h *Handler) overview(w http.ResponseWriter, _ *http.Request, a access) {
	srv := h.cfg.Server
	draining, streams := srv.Draining()
	counts, total := srv.SessionCounts()
	o := overviewJSON{
		ServerID: srv.ID(), Now: millis(time.Now()), Draining: draining, Streams: streams,
		Broker:   brokerJSON{Name: h.cfg.Broker, OK: true},
		Profile:  h.profile(),
		Sessions: map[string]int{"total": total},
		Resumes:  h.resumes(),
		CanAct:   a.act, CanDrain: a.act && h.cfg.Drain != nil && !draining,
		Principal: a.principal, CSRF: h.csrfToken(a.principal),
	}
	for st, n := range counts {
		o.Sessions[stateName(st)] = n
	}
	o.Ready = true
	if h.cfg.Ready != nil {
		if err := h.cfg.Ready(); err != nil {
			o.Ready, o.ReadyError = false, err.Error()
		}
	}
	if err := srv.BrokerErr(); err != nil {
		o.Broker.OK, o.Broker.Error = false, err.Error()
	}
	writeJSON(w, o)
}

func (h *Handler) profile() profileJSON {
	p := h.cfg.Profile
	if p.Heartbeat.Interval <= 0 {
		return profileJSON{Name: "(none)"}
	}
	return profileJSON{
		Name: p.Name, IntervalMS: p.Heartbeat.Interval.Milliseconds(), Misses: p.Heartbeat.Misses,
		GraceMS: p.Heartbeat.Grace.Milliseconds(), DetectionMS: p.DetectionTime().Milliseconds(),
		HeartbeatsPerHour: p.HeartbeatsPerHour(), NATSafe: p.NATSafe(profile.CommonNATIdle),
		KeepaliveMS: p.Server.Time.Milliseconds(), TCPIdleMS: p.TCP.Idle.Milliseconds(),
	}
}

// resumes reads tether_resumes_total by outcome from the metrics.
func (h *Handler) resumes() map[string]uint64 {
	out := map[string]uint64{}
	if h.cfg.Gatherer == nil {
		return out
	}
	mfs, _ := h.cfg.Gatherer.Gather() // a partial answer is still worth showing
	for _, mf := range mfs {
		if mf.GetName() != "tether_resumes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					out[l.GetValue()] = uint64(m.GetCounter().GetValue())
				}
			}
		}
	}
	return out
}

// sessionJSON is one session's row.
type sessionJSON struct {
	ID              string   `json:"id"`
	ClientID        string   `json:"clientId"`
	Principal       string   `json:"principal"`
	State           string   `json:"state"`
	Peer            string   `json:"peer"`
	Created         int64    `json:"created"`
	ConnectedAt     int64    `json:"connectedAt"`
	LastActivity    int64    `json:"lastActivity"`
	ResumeDeadline  int64    `json:"resumeDeadline"`
	Topics          []string `json:"topics"`
	IntervalMS      float64  `json:"intervalMs"`
	RTTMS           float64  `json:"rttMs"`
	Resumes         int      `json:"resumes"`
	Unacked         int      `json:"unacked"`
	Queued          int      `json:"queued"`
	LastSentSeq     uint64   `json:"lastSentSeq"`
	LastAckedSeq    uint64   `json:"lastAckedSeq"`
	LastReceivedSeq uint64   `json:"lastReceivedSeq"`
}

func newSessionJSON(s server.SessionSummary) sessionJSON {
	topics := s.Topics
	if topics == nil {
		topics = []string{}
	}
	return sessionJSON{
		ID: s.ID, ClientID: s.ClientID, Principal: s.Principal, State: stateName(s.State), Peer: s.Peer,
		Created: millis(s.Created), ConnectedAt: millis(s.ConnectedAt), LastActivity: millis(s.LastActivity),
		ResumeDeadline: millis(s.ResumeDeadline), Topics: topics, IntervalMS: ms(s.Interval), RTTMS: ms(s.RTT),
		Resumes: s.Resumes, Unacked: s.Unacked, Queued: s.Queued,
		LastSentSeq: s.LastSentSeq, LastAckedSeq: s.LastAckedSeq, LastReceivedSeq: s.LastReceivedSeq,
	}
}

var sorts = map[string]server.SessionSort{
	"": server.SortAge, "age": server.SortAge, "rtt": server.SortRTT,
	"unacked": server.SortUnacked, "activity": server.SortActivity,
}

// sessions serves one page of the filtered, ordered sessions.
func (h *Handler) sessions(w http.ResponseWriter, r *http.Request, _ access) {
	q, err := parseQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	page := h.cfg.Server.QuerySessions(q)
	rows := make([]sessionJSON, len(page.Sessions))
	for i, s := range page.Sessions {
		rows[i] = newSessionJSON(s)
	}
	writeJSON(w, map[string]any{"sessions": rows, "matched": page.Matched, "total": page.Total, "offset": q.Offset})
}

// parseQuery reads a SessionQuery from the URL: client, topic, principal,
// state, sort, desc, offset, limit.
func parseQuery(r *http.Request) (server.SessionQuery, error) {
	v := r.URL.Query()
	q := server.SessionQuery{ClientID: v.Get("client"), Topic: v.Get("topic"), Principal: v.Get("principal")}
	var ok bool
	if q.Sort, ok = sorts[v.Get("sort")]; !ok {
		return q, errors.New("sort must be age, rtt, unacked or activity")
	}
	q.Desc = v.Get("desc") == "1" || v.Get("desc") == "true"
	if st := v.Get("state"); st != "" {
		n, found := tetherv1.SessionState_value["SESSION_STATE_"+strings.ToUpper(st)]
		if !found || n == 0 {
			return q, errors.New("state must be connected, detached, suspended, closed or moved")
		}
		q.State = tetherv1.SessionState(n)
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"offset", &q.Offset}, {"limit", &q.Limit}} {
		if s := v.Get(f.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return q, errors.New(f.name + " must be a whole number, 0 or more")
			}
			*f.dst = n
		}
	}
	return q, nil
}

// eventJSON is one flight-recorder entry.
type eventJSON struct {
	At     int64   `json:"at"`
	Kind   string  `json:"kind"`
	Detail string  `json:"detail"`
	RTTMS  float64 `json:"rttMs,omitempty"`
	Resume string  `json:"resume,omitempty"`
}

// session serves one session with its flight recorder.
func (h *Handler) session(w http.ResponseWriter, r *http.Request, _ access) {
	in, err := h.cfg.Server.InspectSession(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, "no session with this id on this node: it ended, or it is held by another node")
		return
	}
	events := make([]eventJSON, len(in.Events))
	for i, e := range in.Events {
		events[i] = eventJSON{At: millis(e.At), Kind: strings.ToLower(strings.TrimPrefix(e.Kind.String(), "SESSION_EVENT_KIND_")),
			Detail: e.Detail, RTTMS: ms(e.RTT)}
		if e.Resume != tetherv1.ResumeStatus_RESUME_STATUS_UNSPECIFIED {
			events[i].Resume = strings.ToLower(strings.TrimPrefix(e.Resume.String(), "RESUME_STATUS_"))
		}
	}
	md := in.Metadata
	if md == nil {
		md = map[string]string{}
	}
	writeJSON(w, map[string]any{"session": newSessionJSON(in.SessionSummary), "metadata": md, "events": events, "now": millis(time.Now())})
}

// maxReason bounds a kick's body.
const maxReason = 4 << 10

// kick ends a session for good.
func (h *Handler) kick(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxReason)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, `the body must be JSON: {"reason": "why"}, at most 4 KiB`)
		return
	}
	if err := h.cfg.Server.Kick(r.PathValue("id"), body.Reason); err != nil {
		writeError(w, http.StatusNotFound, "no session with this id on this node: it ended already, or it is held by another node")
		return
	}
	writeJSON(w, map[string]bool{"kicked": true})
}

// drain starts a graceful stop of the node.
func (h *Handler) drain(w http.ResponseWriter, _ *http.Request) {
	if h.cfg.Drain == nil {
		writeError(w, http.StatusNotFound, "this node cannot be drained from the console")
		return
	}
	if draining, _ := h.cfg.Server.Draining(); draining {
		writeError(w, http.StatusConflict, "the node is draining already")
		return
	}
	h.cfg.Drain()
	writeJSONCode(w, http.StatusAccepted, map[string]bool{"draining": true})
}

func stateName(s tetherv1.SessionState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SESSION_STATE_"))
}

// millis is t in Unix milliseconds, 0 for the zero time.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func writeJSON(w http.ResponseWriter, v any) { writeJSONCode(w, http.StatusOK, v) }

// writeJSONCode writes v as JSON with the status code, or a 500 naming
// what could not be encoded.
func writeJSONCode(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": "encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSONCode(w, code, map[string]string{"error": msg})
}
