// tether protocol, version 1: the frames of a session stream.
//
// A session is not a stream. A stream (one call of TetherService.Connect) is
// one attempt to carry a session; the session (its id, resume token, sequence
// numbers, unacknowledged messages and subscriptions) survives a broken stream
// for the resume window announced in Welcome, and a new stream can resume it.
//
// # Order
//
// The client's first frame is Hello, sent exactly once. The server answers
// with Welcome before any other frame. Any other first frame, a second Hello,
// an empty frame (no member of the oneof set) or an unknown member ends the
// stream with INVALID_ARGUMENT. So does a frame the server cannot decode
// (bytes that are not a ConnectRequest, a string field that is not UTF-8:
// the status message names the field, e.g. "ConnectRequest.message.topic")
// and a frame larger than Limits.max_frame_bytes. TetherService.Connect
// lists every code a stream ends with, and what the client does for each.
//
// # Heartbeats (who pings, and when)
//
// Both sides ping, but only when they have been write-idle: a side that has
// sent no frame for the heartbeat interval sends Ping, and the other side
// answers with Pong at once. Any frame received counts as life, so a busy
// stream carries no pings. A side declares its peer dead after
// interval × misses of receiving nothing (plus a small grace:
// Welcome.dead_after), counted from the last frame received, Hello
// included; or, when Welcome.liveness.rtt_timeout is set and a round trip
// was measured, sooner, after interval + max(floor, multiplier × (SRTT +
// 4·RTTVAR)) (see RttTimeout). The time the server takes to handle a
// frame is not the client's silence: it counts from the handling's end.
// A client may change its interval on the stream with SetHeartbeat (see
// "Liveness that learns"). The server then sends GoAway{GO_AWAY_REASON_HEARTBEAT_TIMEOUT},
// ends the stream with DEADLINE_EXCEEDED and keeps the session for the
// resume window. The client asks for an interval in Hello; the server
// clamps it into [Limits.min_heartbeat_interval,
// Limits.max_heartbeat_interval] and announces the result, with the miss
// limit, in Welcome: Welcome.heartbeat_interval is the one that counts,
// whatever Hello asked. A client that never sends anything of its own (for
// example a person typing JSON into grpcurl) stays alive as long as it
// answers the server's pings with Pong. A client that half-closes the
// stream (stops sending without Close) keeps receiving until that deadline,
// since it can no longer answer pings: a listen-only grpcurl call with a
// long heartbeat interval is such a client. If its connection ends first,
// the server notices at once and the session detaches (waits for a
// resume).
//
// # Sequence numbers and acknowledgements
//
// Each direction numbers its Message frames 1, 2, 3, … per session, strictly
// increasing by one, across streams. The receiver acknowledges cumulatively
// with Ack{seq}: everything up to seq was received. The server acks a
// message at once when the client asks (ClientMessage.ack_now) or when
// nothing else waits to be acked, and batches acks under load (one Ack
// for many messages). The client acks as the application takes messages
// (see "Flow control"). The sender
// keeps every unacknowledged message and sends it again after a resume; the
// receiver drops a message whose seq it has already seen, so the application
// sees each message once, in order. An Ack beyond the highest seq sent ends
// the stream with INVALID_ARGUMENT. An Ack at or below one the receiver got
// before (a stale ack, overtaken by a later one) is ignored: acks only move
// forward.
//
// The server's Ack of a client message means "done with it": handled, or
// failed (an Error frame came first, see below). It never acks a refused
// message; it acks it once a re-send of it is handled or fails. With a
// broker shared by many nodes (NATS), the Ack of a handled message also
// waits until its idempotency key (or a mark of its seq) is stored, so
// that any node the session moves to drops a re-send of it; the server
// handles the messages after it meanwhile.
//
// The client may set seq to 0 on its messages; the server then numbers them
// itself (last received + 1). This keeps hand-driven sessions (grpcurl)
// simple; such messages are not deduplicated by seq, only by idempotency key.
//
// # What becomes of a client message
//
// Every client message ends one of three ways, and only the first is
// silent:
//
//   - handled: delivered to its target (or taken by the server's handler).
//     The Ack covering its seq says so.
//   - failed: it can never be handled as sent: its target is unknown or gone
//     (NOT_FOUND), it is not allowed (PERMISSION_DENIED), it is malformed
//     (INVALID_ARGUMENT: an invalid topic, a payload above
//     Limits.max_message_bytes, an id field over 256 bytes, headers over
//     16 KiB), and so on. The server sends Error{code, message, seq}, then
//     acknowledges it: do not re-send it; report it to the application.
//   - refused: it could not be handled now: the server's broker is
//     unreachable (UNAVAILABLE), the route timed out (DEADLINE_EXCEEDED), or
//     was interrupted (ABORTED, RESOURCE_EXHAUSTED, CANCELED). The server
//     sends Error{code, message, seq} and does not acknowledge it, nor
//     anything after it: it drops, unread, every message the client sent
//     after it on this stream. The client waits a little (a delay that
//     grows with each refusal since the last Ack: the Go SDK starts at
//     25 ms and doubles up to 2 s) and sends again from that seq on, with
//     the same seqs and idempotency keys (go-back-N). So messages are
//     handled in order, once each, through a broker outage, without the
//     stream being cut. A message with seq 0 that is refused is not
//     numbered; send it again.
//
// The Error frame of a failed or refused message always comes before the
// Ack that covers or passes its seq. A message is never acknowledged as
// handled when it was not, and its idempotency key is recorded only once it
// was handled: re-sending a failed or refused message with its key is never
// answered as a duplicate. So every loss is reported to someone: a failed
// message to its sender (Error), and a message lost on its way to a
// receiver (its node died, its log overflowed) to the receiver, by
// Welcome.resume_status and Welcome.lost on its next resume.
//
// # Flow control
//
// Server to client, a window. The client states in Hello.receive_window
// how much it takes unacknowledged: messages and payload bytes (the sum of
// ServerMessage.payload sizes). The server never has more than that sent
// and unacknowledged on a stream; it announces the window it grants in
// Welcome.receive_window (at most the outbound log's bounds; a Hello
// without one gets the server's default, tether's: 256 messages, 1 MiB).
// A message larger than the byte window is sent when nothing else is in
// flight. Everything else waits in the session's outbound log, and a
// resume's replay obeys the window too. So that a reader that keeps up
// never stalls, acknowledge once half the window is outstanding. Otherwise
// an ack only lets the server drop what it keeps for a resume (a resume
// replays from Resume.last_received_seq, not from the last ack), so it may
// wait: the Go SDK sends it with the next frame it writes anyway (a ping, a
// pong, a message) and 2 s after the first message it has not acked at the
// latest. A client that never acks gets one window and then nothing more,
// until it acks or resumes: it is not cut off for that.
//
// The outbound log is bounded: Limits.max_outbound_queue messages and
// Limits.max_outbound_bytes payload bytes, sent and unacknowledged or
// queued. When a message finds the log full, the session is a slow
// consumer and Limits.overflow_policy applies:
//
//   - BACKPRESSURE (the default): a message with one recipient (a session
//     id, a client id, a reply) is not queued. (A client id that several
//     sessions hold, on a server that allows it, has several recipients:
//     it is treated as a topic.) Its sender learns it: a
//     ClientMessage is refused (Error{RESOURCE_EXHAUSTED, seq}; re-send it
//     later, see "What becomes of a client message"), and
//     TetherService.Publish ends with RESOURCE_EXHAUSTED and a RetryInfo
//     detail. A topic message cannot wait for its slowest subscriber: it
//     is queued, and the full subscriber's oldest messages are dropped as
//     under DROP_OLDEST.
//   - DROP_OLDEST: the message is queued and the oldest unacknowledged
//     messages are dropped to make room. The client is told at once: a Gap
//     frame names the lost range.
//   - DISCONNECT: the stream is cut: GoAway{SLOW_CONSUMER}, then
//     RESOURCE_EXHAUSTED. The message is queued and the session waits for
//     a resume, its log still bounded as under DROP_OLDEST (the loss then
//     reported in Welcome.lost).
//
// However the log overflows, no message is lost unreported: a refused
// message's sender is told, a dropped message's receiver is told (Gap, or
// Welcome.lost on a resume).
//
// Client to server, pacing. The server reads at most
// Limits.max_frames_per_second frames per second on a stream (bursts of
// Limits.max_frame_burst). Beyond that it reads more slowly, so HTTP/2
// flow control holds the client's writes back; it does not cut the stream
// for it. A client should pace itself to that rate (the Go SDK does).
//
// # Batches
//
// Either side may carry several business messages in one frame: a
// ServerMessageBatch (ConnectResponse.batch) or a ClientMessageBatch
// (ConnectRequest.batch). Batches are negotiated: the client asks with
// Hello.max_batch, and the server grants Welcome.max_batch. The server sends
// batches only to a client that asked, and a client sends them only to a
// server that granted a non-zero Welcome.max_batch, so a client that does
// not know batches (grpcurl, an older stub) never sees one.
//
// A batch means exactly what its messages would mean as consecutive Message
// frames, in the batch's order: the same seqs, one each, in order; the same
// acknowledgement (one cumulative Ack may cover a whole batch, or part of
// it); the same Error frames for a failed or refused message (a refused
// message drops, unread, the rest of its batch and everything after it,
// see "What becomes of a client message"); and each message counts as one
// frame against Limits.max_frames_per_second. A batch holds at least one
// message and at most Welcome.max_batch, and its encoded size is at most
// Limits.max_frame_bytes. The server's receive window counts messages, not
// frames: a batch never takes the window past its bounds. Batches are an
// optimisation for a sender that has several messages waiting at once:
// neither side holds a message back to fill a batch. A batch that is empty
// or larger than Welcome.max_batch, or a ClientMessageBatch sent when
// Welcome.max_batch was 0, ends the stream with INVALID_ARGUMENT.
//
// # Subscriptions
//
// Subscribe and Unsubscribe are all or nothing, like Hello.topics. If one
// topic is invalid (INVALID_ARGUMENT), not permitted (PERMISSION_DENIED),
// would take the session over Limits.max_topics (INVALID_ARGUMENT) or could
// not be bound in the broker (UNAVAILABLE: send the Subscribe again later),
// the session's subscriptions stay as they were and the server answers with
// Error{code, message, topic, request_id}: Error.topic names the topic,
// Error.request_id is the frame's request_id. The stream goes on. Nothing
// answers a Subscribe or Unsubscribe that succeeded (Welcome.topics lists
// the subscriptions after a resume). Unsubscribing from a topic not held is
// not an error. The same checks on Hello.topics end the stream with the
// same codes, before Welcome.
//
// # Liveness that learns
//
// Welcome.liveness says what the server offers beyond the fixed
// heartbeat; a client sends SetHeartbeat and Suspend only to a server that
// offers them (an older server ends the stream with INVALID_ARGUMENT for a
// frame it does not know).
//
//   - The RTT-derived dead-peer timeout (RttTimeout): both sides keep
//     SRTT and RTTVAR from their Pongs and from Ping.rtt, the round trip
//     the peer reports, and declare the peer dead after interval +
//     max(floor, multiplier × (SRTT + 4·RTTVAR)) of silence, never later
//     than dead_after.
//   - An adaptive heartbeat: a client that learns how long its path (a
//     NAT) stays alive when idle heartbeats at a longer (or shorter)
//     interval and announces it with SetHeartbeat; the server's pings and
//     dead-after follow it. The Go SDK's search: start at the profile's
//     interval; after 3 heartbeats in a row, each after a full interval of
//     silence, answered, try half again as long; when the path is lost
//     after such a heartbeat, go back to the last good interval and bisect
//     between it and the failed one until they are within 5 %; then
//     heartbeat 5 % below the good one; two losses in a row there restart
//     the search lower; probe again after a day.
//   - Suspend: an application going to the background asks the server to
//     keep its session for longer, without heartbeats; the stream ends and
//     the session waits for a resume (AdminService:
//     SESSION_STATE_SUSPENDED), queueing its messages.
//
// # Control frames first
//
// Pong, Ack and GoAway never wait behind queued Message frames in the
// server's writer: a slow or large payload cannot cause a false "no pong"
// death or a late ack.

// Code generated by protoc-gen-go. DO NOT EDIT.
// versions:
// 	protoc-gen-go v1.36.12-devel
// 	protoc        (unknown)
// source: tether/v1/frames.proto

package tetherv1

import (
	protoreflect "google.golang.org/protobuf/reflect/protoreflect"
	protoimpl "google.golang.org/protobuf/runtime/protoimpl"
	durationpb "google.golang.org/protobuf/types/known/durationpb"
	timestamppb "google.golang.org/protobuf/types/known/timestamppb"
	reflect "reflect"
	sync "sync"
	unsafe "unsafe"
)

const (
	// Verify that this generated code is sufficiently up-to-date.
	_ = protoimpl.EnforceVersion(20 - protoimpl.MinVersion)
	// Verify that runtime/protoimpl is sufficiently up-to-date.
	_ = protoimpl.EnforceVersion(protoimpl.MaxVersion - 20)
)

// ResumeStatus is the outcome of Hello.resume. Every value other than
// RESUMED and RESUMED_WITH_GAP comes with a fresh session (Welcome.resumed
// false): never an error, never silently.
type ResumeStatus int32

const (
	// Never sent.
	ResumeStatus_RESUME_STATUS_UNSPECIFIED ResumeStatus = 0
	// Hello carried no resume: a fresh session, as asked.
	ResumeStatus_RESUME_STATUS_NOT_REQUESTED ResumeStatus = 1
	// The session was resumed; nothing was lost.
	ResumeStatus_RESUME_STATUS_RESUMED ResumeStatus = 2
	// The session was resumed, but messages the client had not received are
	// gone, and Welcome.lost names their seq range: the outbound log
	// overflowed while the client was away, or the session moved to another
	// node of a deployment that keeps outbound logs in the memory of the
	// node holding the session (tetherd --nats-durability node; see
	// Welcome.resume_anywhere). After the death of such a node, the range
	// reaches to the highest seq the node may have used, which may include
	// up to 1024 seqs that no message ever had.
	ResumeStatus_RESUME_STATUS_RESUMED_WITH_GAP ResumeStatus = 3
	// No session with that id and token is known here (never existed, or the
	// token is wrong or stale). The two cases are indistinguishable on purpose.
	ResumeStatus_RESUME_STATUS_UNKNOWN_SESSION ResumeStatus = 4
	// The session existed but its resume window ended.
	ResumeStatus_RESUME_STATUS_EXPIRED ResumeStatus = 5
	// The session belongs to another principal.
	ResumeStatus_RESUME_STATUS_PRINCIPAL_MISMATCH ResumeStatus = 6
	// The session was closed (Close frame, AdminService.CloseSession or a
	// policy cut-off) and cannot be resumed.
	ResumeStatus_RESUME_STATUS_CLOSED ResumeStatus = 7
	// Resume.last_received_seq is beyond anything the server sent: the client
	// and the server disagree about the session's history.
	ResumeStatus_RESUME_STATUS_SEQ_MISMATCH ResumeStatus = 8
)

// Enum value maps for ResumeStatus.
var (
	ResumeStatus_name = map[int32]string{
		0: "RESUME_STATUS_UNSPECIFIED",
		1: "RESUME_STATUS_NOT_REQUESTED",
		2: "RESUME_STATUS_RESUMED",
		3: "RESUME_STATUS_RESUMED_WITH_GAP",
		4: "RESUME_STATUS_UNKNOWN_SESSION",
		5: "RESUME_STATUS_EXPIRED",
		6: "RESUME_STATUS_PRINCIPAL_MISMATCH",
		7: "RESUME_STATUS_CLOSED",
		8: "RESUME_STATUS_SEQ_MISMATCH",
	}
	ResumeStatus_value = map[string]int32{
		"RESUME_STATUS_UNSPECIFIED":        0,
		"RESUME_STATUS_NOT_REQUESTED":      1,
		"RESUME_STATUS_RESUMED":            2,
		"RESUME_STATUS_RESUMED_WITH_GAP":   3,
		"RESUME_STATUS_UNKNOWN_SESSION":    4,
		"RESUME_STATUS_EXPIRED":            5,
		"RESUME_STATUS_PRINCIPAL_MISMATCH": 6,
		"RESUME_STATUS_CLOSED":             7,
		"RESUME_STATUS_SEQ_MISMATCH":       8,
	}
)

func (x ResumeStatus) Enum() *ResumeStatus {
	p := new(ResumeStatus)
	*p = x
	return p
}

func (x ResumeStatus) String() string {
	return protoimpl.X.EnumStringOf(x.Descriptor(), protoreflect.EnumNumber(x))
}

func (ResumeStatus) Descriptor() protoreflect.EnumDescriptor {
	return file_tether_v1_frames_proto_enumTypes[0].Descriptor()
}

func (ResumeStatus) Type() protoreflect.EnumType {
	return &file_tether_v1_frames_proto_enumTypes[0]
}

func (x ResumeStatus) Number() protoreflect.EnumNumber {
	return protoreflect.EnumNumber(x)
}

// Deprecated: Use ResumeStatus.Descriptor instead.
func (ResumeStatus) EnumDescriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{0}
}

// OverflowPolicy is what the server does with a message for a session whose
// outbound log is full; see "Flow control" above.
type OverflowPolicy int32

const (
	// Never sent.
	OverflowPolicy_OVERFLOW_POLICY_UNSPECIFIED OverflowPolicy = 0
	// Refuse single-recipient messages (the sender is told
	// RESOURCE_EXHAUSTED); topic messages drop the oldest, with a Gap.
	OverflowPolicy_OVERFLOW_POLICY_BACKPRESSURE OverflowPolicy = 1
	// Drop the oldest unacknowledged messages; a Gap tells the client.
	OverflowPolicy_OVERFLOW_POLICY_DROP_OLDEST OverflowPolicy = 2
	// Cut the stream: GoAway SLOW_CONSUMER, then RESOURCE_EXHAUSTED.
	OverflowPolicy_OVERFLOW_POLICY_DISCONNECT OverflowPolicy = 3
)

// Enum value maps for OverflowPolicy.
var (
	OverflowPolicy_name = map[int32]string{
		0: "OVERFLOW_POLICY_UNSPECIFIED",
		1: "OVERFLOW_POLICY_BACKPRESSURE",
		2: "OVERFLOW_POLICY_DROP_OLDEST",
		3: "OVERFLOW_POLICY_DISCONNECT",
	}
	OverflowPolicy_value = map[string]int32{
		"OVERFLOW_POLICY_UNSPECIFIED":  0,
		"OVERFLOW_POLICY_BACKPRESSURE": 1,
		"OVERFLOW_POLICY_DROP_OLDEST":  2,
		"OVERFLOW_POLICY_DISCONNECT":   3,
	}
)

func (x OverflowPolicy) Enum() *OverflowPolicy {
	p := new(OverflowPolicy)
	*p = x
	return p
}

func (x OverflowPolicy) String() string {
	return protoimpl.X.EnumStringOf(x.Descriptor(), protoreflect.EnumNumber(x))
}

func (OverflowPolicy) Descriptor() protoreflect.EnumDescriptor {
	return file_tether_v1_frames_proto_enumTypes[1].Descriptor()
}

func (OverflowPolicy) Type() protoreflect.EnumType {
	return &file_tether_v1_frames_proto_enumTypes[1]
}

func (x OverflowPolicy) Number() protoreflect.EnumNumber {
	return protoreflect.EnumNumber(x)
}

// Deprecated: Use OverflowPolicy.Descriptor instead.
func (OverflowPolicy) EnumDescriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{1}
}

// GoAwayReason says why a stream ends and, from the code alone, whether and
// how the client reconnects.
type GoAwayReason int32

const (
	// Never sent.
	GoAwayReason_GO_AWAY_REASON_UNSPECIFIED GoAwayReason = 0
	// The server is draining (deploy, scale-down). Reconnect to another
	// backend after retry_after + jitter and resume.
	GoAwayReason_GO_AWAY_REASON_DRAIN GoAwayReason = 1
	// The stream reached its maximum age. Reconnect (any backend) and resume:
	// this rebalances long-lived streams. Reconnect on a new connection: the
	// age is the connection's, and a stream opened on the old one gets only
	// a short life (half the profile's MaxConnectionAgeGrace) before another
	// MAX_AGE.
	GoAwayReason_GO_AWAY_REASON_MAX_AGE GoAwayReason = 2
	// A newer stream took over this session, or a newer session took over
	// this client id. Do not reconnect: someone else holds the session now.
	GoAwayReason_GO_AWAY_REASON_TAKEN_OVER GoAwayReason = 3
	// The client did not read its messages fast enough: its outbound log is
	// full and the server's overflow policy is DISCONNECT. Reconnect with
	// backoff and resume; consider reading faster.
	GoAwayReason_GO_AWAY_REASON_SLOW_CONSUMER GoAwayReason = 4
	// An operator closed the session (AdminService.CloseSession). Do not
	// resume; a fresh session may be opened after retry_after.
	GoAwayReason_GO_AWAY_REASON_CLOSED_BY_ADMIN GoAwayReason = 5
	// The client violated the protocol. Do not reconnect without a fix.
	// Not sent by tether v1 servers: a protocol violation ends the stream
	// with INVALID_ARGUMENT at once, without a GoAway. A client treats it as
	// terminal if it ever comes.
	GoAwayReason_GO_AWAY_REASON_PROTOCOL_ERROR GoAwayReason = 6
	// The server received nothing for Welcome.dead_after (heartbeat_interval
	// × heartbeat_misses, plus grace). The stream then ends with
	// DEADLINE_EXCEEDED; the session waits for a resume. Reconnect and
	// resume.
	GoAwayReason_GO_AWAY_REASON_HEARTBEAT_TIMEOUT GoAwayReason = 7
	// The server is at its session limit. Reconnect to another backend after
	// retry_after + jitter. Not sent by tether v1 servers: a Hello beyond the
	// session limit ends the stream with UNAVAILABLE, without a GoAway.
	GoAwayReason_GO_AWAY_REASON_OVERLOADED GoAwayReason = 8
)

// Enum value maps for GoAwayReason.
var (
	GoAwayReason_name = map[int32]string{
		0: "GO_AWAY_REASON_UNSPECIFIED",
		1: "GO_AWAY_REASON_DRAIN",
		2: "GO_AWAY_REASON_MAX_AGE",
		3: "GO_AWAY_REASON_TAKEN_OVER",
		4: "GO_AWAY_REASON_SLOW_CONSUMER",
		5: "GO_AWAY_REASON_CLOSED_BY_ADMIN",
		6: "GO_AWAY_REASON_PROTOCOL_ERROR",
		7: "GO_AWAY_REASON_HEARTBEAT_TIMEOUT",
		8: "GO_AWAY_REASON_OVERLOADED",
	}
	GoAwayReason_value = map[string]int32{
		"GO_AWAY_REASON_UNSPECIFIED":       0,
		"GO_AWAY_REASON_DRAIN":             1,
		"GO_AWAY_REASON_MAX_AGE":           2,
		"GO_AWAY_REASON_TAKEN_OVER":        3,
		"GO_AWAY_REASON_SLOW_CONSUMER":     4,
		"GO_AWAY_REASON_CLOSED_BY_ADMIN":   5,
		"GO_AWAY_REASON_PROTOCOL_ERROR":    6,
		"GO_AWAY_REASON_HEARTBEAT_TIMEOUT": 7,
		"GO_AWAY_REASON_OVERLOADED":        8,
	}
)

func (x GoAwayReason) Enum() *GoAwayReason {
	p := new(GoAwayReason)
	*p = x
	return p
}

func (x GoAwayReason) String() string {
	return protoimpl.X.EnumStringOf(x.Descriptor(), protoreflect.EnumNumber(x))
}

func (GoAwayReason) Descriptor() protoreflect.EnumDescriptor {
	return file_tether_v1_frames_proto_enumTypes[2].Descriptor()
}

func (GoAwayReason) Type() protoreflect.EnumType {
	return &file_tether_v1_frames_proto_enumTypes[2]
}

func (x GoAwayReason) Number() protoreflect.EnumNumber {
	return protoreflect.EnumNumber(x)
}

// Deprecated: Use GoAwayReason.Descriptor instead.
func (GoAwayReason) EnumDescriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{2}
}

// Hello opens a session or resumes one. It is the client's first frame and is
// sent exactly once per stream.
type Hello struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The client's stable identity (a device id, an agent name). At most one
	// live session exists per client id: a new session for the same client id
	// takes over and the old one receives GoAway{GO_AWAY_REASON_TAKEN_OVER}.
	// Empty means anonymous: no client-id routing and no takeover. At most
	// 256 bytes. On a successful resume it is ignored: a session keeps the
	// client id it was created with, whatever a later Hello says, and
	// Welcome.client_id says which it is.
	ClientId string `protobuf:"bytes,1,opt,name=client_id,json=clientId,proto3" json:"client_id,omitempty"`
	// The heartbeat interval the client would like. Zero asks for the
	// server's default. The server clamps it, without an error, into
	// [Limits.min_heartbeat_interval, Limits.max_heartbeat_interval] and
	// announces the result in Welcome.heartbeat_interval, which is the one
	// that counts.
	HeartbeatInterval *durationpb.Duration `protobuf:"bytes,2,opt,name=heartbeat_interval,json=heartbeatInterval,proto3" json:"heartbeat_interval,omitempty"`
	// Topics to subscribe to at once. Ignored on a successful resume: the
	// resumed session keeps the subscriptions it had. All or nothing: an
	// invalid topic or more than Limits.max_topics (INVALID_ARGUMENT), a
	// topic not permitted (PERMISSION_DENIED) or a failed broker bind
	// (UNAVAILABLE) ends the stream before Welcome, with the code a
	// Subscribe's Error frame would carry.
	Topics []string `protobuf:"bytes,3,rep,name=topics,proto3" json:"topics,omitempty"`
	// Set to resume an earlier session. (A session keeps its own client_id;
	// see client_id.)
	Resume *Resume `protobuf:"bytes,4,opt,name=resume,proto3" json:"resume,omitempty"`
	// Free-form labels shown to operators (AdminService) and handlers.
	Metadata map[string]string `protobuf:"bytes,5,rep,name=metadata,proto3" json:"metadata,omitempty" protobuf_key:"bytes,1,opt,name=key" protobuf_val:"bytes,2,opt,name=value"`
	// How much the client takes unacknowledged (see "Flow control"). Unset,
	// or a zero field, asks for the server's default. The server clamps the
	// message count into [1, Limits.max_outbound_queue] and the byte count
	// to at most Limits.max_outbound_bytes, without an error, and announces
	// the result in Welcome.receive_window.
	ReceiveWindow *ReceiveWindow `protobuf:"bytes,6,opt,name=receive_window,json=receiveWindow,proto3" json:"receive_window,omitempty"`
	// The most messages the client takes in one ServerMessageBatch frame
	// (see "Batches"). 0, or unset, asks for no batches: every message then
	// comes in a Message frame of its own, as for a client that predates
	// batches. The server clamps it to its own maximum (tether's: 128) and
	// announces the result in Welcome.max_batch.
	MaxBatch      uint32 `protobuf:"varint,7,opt,name=max_batch,json=maxBatch,proto3" json:"max_batch,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Hello) Reset() {
	*x = Hello{}
	mi := &file_tether_v1_frames_proto_msgTypes[0]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Hello) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Hello) ProtoMessage() {}

func (x *Hello) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[0]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Hello.ProtoReflect.Descriptor instead.
func (*Hello) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{0}
}

func (x *Hello) GetClientId() string {
	if x != nil {
		return x.ClientId
	}
	return ""
}

func (x *Hello) GetHeartbeatInterval() *durationpb.Duration {
	if x != nil {
		return x.HeartbeatInterval
	}
	return nil
}

func (x *Hello) GetTopics() []string {
	if x != nil {
		return x.Topics
	}
	return nil
}

func (x *Hello) GetResume() *Resume {
	if x != nil {
		return x.Resume
	}
	return nil
}

func (x *Hello) GetMetadata() map[string]string {
	if x != nil {
		return x.Metadata
	}
	return nil
}

func (x *Hello) GetReceiveWindow() *ReceiveWindow {
	if x != nil {
		return x.ReceiveWindow
	}
	return nil
}

func (x *Hello) GetMaxBatch() uint32 {
	if x != nil {
		return x.MaxBatch
	}
	return 0
}

// ServerMessageBatch is several server messages in one frame (see
// "Batches").
type ServerMessageBatch struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The messages, in seq order, as if each came in a Message frame.
	Messages      []*ServerMessage `protobuf:"bytes,1,rep,name=messages,proto3" json:"messages,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *ServerMessageBatch) Reset() {
	*x = ServerMessageBatch{}
	mi := &file_tether_v1_frames_proto_msgTypes[1]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *ServerMessageBatch) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*ServerMessageBatch) ProtoMessage() {}

func (x *ServerMessageBatch) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[1]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use ServerMessageBatch.ProtoReflect.Descriptor instead.
func (*ServerMessageBatch) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{1}
}

func (x *ServerMessageBatch) GetMessages() []*ServerMessage {
	if x != nil {
		return x.Messages
	}
	return nil
}

// ClientMessageBatch is several client messages in one frame (see
// "Batches").
type ClientMessageBatch struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The messages, in seq order, as if each came in a Message frame.
	Messages      []*ClientMessage `protobuf:"bytes,1,rep,name=messages,proto3" json:"messages,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *ClientMessageBatch) Reset() {
	*x = ClientMessageBatch{}
	mi := &file_tether_v1_frames_proto_msgTypes[2]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *ClientMessageBatch) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*ClientMessageBatch) ProtoMessage() {}

func (x *ClientMessageBatch) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[2]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use ClientMessageBatch.ProtoReflect.Descriptor instead.
func (*ClientMessageBatch) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{2}
}

func (x *ClientMessageBatch) GetMessages() []*ClientMessage {
	if x != nil {
		return x.Messages
	}
	return nil
}

// ReceiveWindow bounds what the server has sent and not yet had
// acknowledged on a stream.
type ReceiveWindow struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// At most this many server messages.
	Messages uint32 `protobuf:"varint,1,opt,name=messages,proto3" json:"messages,omitempty"`
	// At most this many payload bytes (the sum of ServerMessage.payload
	// sizes); a larger message is sent when nothing else is in flight.
	Bytes         uint32 `protobuf:"varint,2,opt,name=bytes,proto3" json:"bytes,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *ReceiveWindow) Reset() {
	*x = ReceiveWindow{}
	mi := &file_tether_v1_frames_proto_msgTypes[3]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *ReceiveWindow) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*ReceiveWindow) ProtoMessage() {}

func (x *ReceiveWindow) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[3]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use ReceiveWindow.ProtoReflect.Descriptor instead.
func (*ReceiveWindow) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{3}
}

func (x *ReceiveWindow) GetMessages() uint32 {
	if x != nil {
		return x.Messages
	}
	return 0
}

func (x *ReceiveWindow) GetBytes() uint32 {
	if x != nil {
		return x.Bytes
	}
	return 0
}

// Resume names a session to continue.
type Resume struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The session id from an earlier Welcome.
	SessionId string `protobuf:"bytes,1,opt,name=session_id,json=sessionId,proto3" json:"session_id,omitempty"`
	// The resume token from the most recent Welcome of that session. Tokens
	// rotate: every Welcome carries a new one. The token a client presented
	// keeps working beside the new one until the client presents the new one
	// (so a client whose Welcome was lost, its stream broken right after the
	// resume, can resume again with the token it holds); every older token
	// stops working.
	ResumeToken string `protobuf:"bytes,2,opt,name=resume_token,json=resumeToken,proto3" json:"resume_token,omitempty"`
	// The highest server seq the client has received (and delivered). The
	// server replays its unacknowledged messages from last_received_seq + 1.
	// A successful resume acknowledges everything up to it, as an Ack would.
	LastReceivedSeq uint64 `protobuf:"varint,3,opt,name=last_received_seq,json=lastReceivedSeq,proto3" json:"last_received_seq,omitempty"`
	unknownFields   protoimpl.UnknownFields
	sizeCache       protoimpl.SizeCache
}

func (x *Resume) Reset() {
	*x = Resume{}
	mi := &file_tether_v1_frames_proto_msgTypes[4]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Resume) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Resume) ProtoMessage() {}

func (x *Resume) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[4]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Resume.ProtoReflect.Descriptor instead.
func (*Resume) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{4}
}

func (x *Resume) GetSessionId() string {
	if x != nil {
		return x.SessionId
	}
	return ""
}

func (x *Resume) GetResumeToken() string {
	if x != nil {
		return x.ResumeToken
	}
	return ""
}

func (x *Resume) GetLastReceivedSeq() uint64 {
	if x != nil {
		return x.LastReceivedSeq
	}
	return 0
}

// Welcome is the server's first frame on every stream.
type Welcome struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The session's id: stable across resumes.
	SessionId string `protobuf:"bytes,1,opt,name=session_id,json=sessionId,proto3" json:"session_id,omitempty"`
	// The secret that resumes this session. Unguessable, bound to the
	// authenticated principal, and rotated on every Welcome.
	ResumeToken string `protobuf:"bytes,2,opt,name=resume_token,json=resumeToken,proto3" json:"resume_token,omitempty"`
	// True when Hello.resume was honoured. When false, this is a fresh session
	// and resume_status says why the old one could not be resumed.
	Resumed bool `protobuf:"varint,3,opt,name=resumed,proto3" json:"resumed,omitempty"`
	// The resume outcome, always set.
	ResumeStatus ResumeStatus `protobuf:"varint,4,opt,name=resume_status,json=resumeStatus,proto3,enum=tether.v1.ResumeStatus" json:"resume_status,omitempty"`
	// When resume_status is RESUME_STATUS_RESUMED_WITH_GAP: the server
	// messages that were dropped from the outbound log while the client was
	// away, or left behind in the memory of another node (see
	// RESUME_STATUS_RESUMED_WITH_GAP), and will never arrive.
	Lost *SeqRange `protobuf:"bytes,5,opt,name=lost,proto3" json:"lost,omitempty"`
	// The id of the server node that holds the stream.
	ServerId string `protobuf:"bytes,6,opt,name=server_id,json=serverId,proto3" json:"server_id,omitempty"`
	// The granted heartbeat interval: ping when write-idle this long.
	HeartbeatInterval *durationpb.Duration `protobuf:"bytes,7,opt,name=heartbeat_interval,json=heartbeatInterval,proto3" json:"heartbeat_interval,omitempty"`
	// A side that receives nothing for heartbeat_interval × heartbeat_misses
	// declares its peer dead.
	HeartbeatMisses uint32 `protobuf:"varint,8,opt,name=heartbeat_misses,json=heartbeatMisses,proto3" json:"heartbeat_misses,omitempty"`
	// The transport keepalive floor: a client that enables gRPC (HTTP/2 PING)
	// keepalive must use a ping time of at least this, or the server answers
	// with GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and the connection dies.
	KeepaliveMinTime *durationpb.Duration `protobuf:"bytes,9,opt,name=keepalive_min_time,json=keepaliveMinTime,proto3" json:"keepalive_min_time,omitempty"`
	// How long the session outlives a broken stream.
	ResumeWindow *durationpb.Duration `protobuf:"bytes,10,opt,name=resume_window,json=resumeWindow,proto3" json:"resume_window,omitempty"`
	// The highest client seq the server has received. After a resume the
	// client re-sends its unacknowledged messages above this.
	LastReceivedSeq uint64 `protobuf:"varint,11,opt,name=last_received_seq,json=lastReceivedSeq,proto3" json:"last_received_seq,omitempty"`
	// The highest server seq assigned so far on this session, sent or queued
	// (0 for a new one, unless it inherited messages: took_over.inherited).
	// Every message up to it will arrive, except those in lost.
	LastSentSeq uint64 `protobuf:"varint,12,opt,name=last_sent_seq,json=lastSentSeq,proto3" json:"last_sent_seq,omitempty"`
	// Limits the server enforces on this stream.
	Limits *Limits `protobuf:"bytes,13,opt,name=limits,proto3" json:"limits,omitempty"`
	// The topics the session is subscribed to.
	Topics []string `protobuf:"bytes,14,rep,name=topics,proto3" json:"topics,omitempty"`
	// The server declares the client dead after receiving nothing for this
	// long: heartbeat_interval × heartbeat_misses plus a small grace. With
	// liveness.rtt_timeout set, this is the bound: once a round trip was
	// measured the server declares it dead sooner (see RttTimeout). After a
	// SetHeartbeat it is the new interval × heartbeat_misses plus the same
	// grace.
	DeadAfter *durationpb.Duration `protobuf:"bytes,15,opt,name=dead_after,json=deadAfter,proto3" json:"dead_after,omitempty"`
	// True when every backend of the deployment shares the server's session
	// store (a NATS broker): a session resumes on any of them, so after a
	// broken stream reconnect to any healthy backend instead of returning to
	// this one first. False when only this server can resume the session
	// without loss: a server of its own (the memory broker), or a NATS
	// deployment that keeps each session's outbound log in the memory of the
	// node holding it (tetherd --nats-durability node). There a resume on
	// another backend succeeds but loses the messages the client had not
	// received, and says so (RESUME_STATUS_RESUMED_WITH_GAP, Welcome.lost):
	// return to this server first while it is healthy.
	ResumeAnywhere bool `protobuf:"varint,16,opt,name=resume_anywhere,json=resumeAnywhere,proto3" json:"resume_anywhere,omitempty"`
	// The session's client id: Hello.client_id of the Hello that created it.
	// A resume keeps it even when the resuming Hello names another one.
	ClientId string `protobuf:"bytes,17,opt,name=client_id,json=clientId,proto3" json:"client_id,omitempty"`
	// The receive window granted: Hello.receive_window, clamped (see
	// "Flow control").
	ReceiveWindow *ReceiveWindow `protobuf:"bytes,18,opt,name=receive_window,json=receiveWindow,proto3" json:"receive_window,omitempty"`
	// Set when this fresh session took its client id over from an earlier
	// session of the same principal (Hello.client_id without a valid
	// resume): what became of that session's undelivered messages.
	TookOver *TakeOver `protobuf:"bytes,19,opt,name=took_over,json=tookOver,proto3" json:"took_over,omitempty"`
	// The most messages the server puts in one ServerMessageBatch frame:
	// Hello.max_batch, clamped to the server's maximum and to
	// Limits.max_frame_burst; 0 when Hello asked for none (or the server
	// predates batches). When it is not 0 the server also takes
	// ClientMessageBatch frames of at most this many messages (see
	// "Batches"); a client must not send one otherwise.
	MaxBatch uint32 `protobuf:"varint,20,opt,name=max_batch,json=maxBatch,proto3" json:"max_batch,omitempty"`
	// What the server offers beyond the fixed heartbeat: the RTT-derived
	// dead-peer timeout, SetHeartbeat and Suspend (see "Liveness that
	// learns"). Unset from servers that offer none of them: a client sends
	// neither SetHeartbeat nor Suspend then.
	Liveness      *Liveness `protobuf:"bytes,21,opt,name=liveness,proto3" json:"liveness,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Welcome) Reset() {
	*x = Welcome{}
	mi := &file_tether_v1_frames_proto_msgTypes[5]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Welcome) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Welcome) ProtoMessage() {}

func (x *Welcome) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[5]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Welcome.ProtoReflect.Descriptor instead.
func (*Welcome) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{5}
}

func (x *Welcome) GetSessionId() string {
	if x != nil {
		return x.SessionId
	}
	return ""
}

func (x *Welcome) GetResumeToken() string {
	if x != nil {
		return x.ResumeToken
	}
	return ""
}

func (x *Welcome) GetResumed() bool {
	if x != nil {
		return x.Resumed
	}
	return false
}

func (x *Welcome) GetResumeStatus() ResumeStatus {
	if x != nil {
		return x.ResumeStatus
	}
	return ResumeStatus_RESUME_STATUS_UNSPECIFIED
}

func (x *Welcome) GetLost() *SeqRange {
	if x != nil {
		return x.Lost
	}
	return nil
}

func (x *Welcome) GetServerId() string {
	if x != nil {
		return x.ServerId
	}
	return ""
}

func (x *Welcome) GetHeartbeatInterval() *durationpb.Duration {
	if x != nil {
		return x.HeartbeatInterval
	}
	return nil
}

func (x *Welcome) GetHeartbeatMisses() uint32 {
	if x != nil {
		return x.HeartbeatMisses
	}
	return 0
}

func (x *Welcome) GetKeepaliveMinTime() *durationpb.Duration {
	if x != nil {
		return x.KeepaliveMinTime
	}
	return nil
}

func (x *Welcome) GetResumeWindow() *durationpb.Duration {
	if x != nil {
		return x.ResumeWindow
	}
	return nil
}

func (x *Welcome) GetLastReceivedSeq() uint64 {
	if x != nil {
		return x.LastReceivedSeq
	}
	return 0
}

func (x *Welcome) GetLastSentSeq() uint64 {
	if x != nil {
		return x.LastSentSeq
	}
	return 0
}

func (x *Welcome) GetLimits() *Limits {
	if x != nil {
		return x.Limits
	}
	return nil
}

func (x *Welcome) GetTopics() []string {
	if x != nil {
		return x.Topics
	}
	return nil
}

func (x *Welcome) GetDeadAfter() *durationpb.Duration {
	if x != nil {
		return x.DeadAfter
	}
	return nil
}

func (x *Welcome) GetResumeAnywhere() bool {
	if x != nil {
		return x.ResumeAnywhere
	}
	return false
}

func (x *Welcome) GetClientId() string {
	if x != nil {
		return x.ClientId
	}
	return ""
}

func (x *Welcome) GetReceiveWindow() *ReceiveWindow {
	if x != nil {
		return x.ReceiveWindow
	}
	return nil
}

func (x *Welcome) GetTookOver() *TakeOver {
	if x != nil {
		return x.TookOver
	}
	return nil
}

func (x *Welcome) GetMaxBatch() uint32 {
	if x != nil {
		return x.MaxBatch
	}
	return 0
}

func (x *Welcome) GetLiveness() *Liveness {
	if x != nil {
		return x.Liveness
	}
	return nil
}

// Liveness is what a server offers beyond the fixed heartbeat of
// Welcome.heartbeat_interval and dead_after.
type Liveness struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The server takes SetHeartbeat frames: a client that learns a longer
	// (or shorter) interval may tell it, and the server's dead-after follows.
	SetHeartbeat bool `protobuf:"varint,1,opt,name=set_heartbeat,json=setHeartbeat,proto3" json:"set_heartbeat,omitempty"`
	// The server takes Suspend frames.
	Suspend bool `protobuf:"varint,2,opt,name=suspend,proto3" json:"suspend,omitempty"`
	// The longest window a suspended session is kept for; Suspend.window is
	// clamped to it. Set when suspend is.
	MaxSuspendWindow *durationpb.Duration `protobuf:"bytes,3,opt,name=max_suspend_window,json=maxSuspendWindow,proto3" json:"max_suspend_window,omitempty"`
	// When set, both sides declare the peer dead by the RTT-derived formula
	// below instead of after dead_after; unset, dead_after applies.
	RttTimeout    *RttTimeout `protobuf:"bytes,4,opt,name=rtt_timeout,json=rttTimeout,proto3" json:"rtt_timeout,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Liveness) Reset() {
	*x = Liveness{}
	mi := &file_tether_v1_frames_proto_msgTypes[6]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Liveness) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Liveness) ProtoMessage() {}

func (x *Liveness) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[6]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Liveness.ProtoReflect.Descriptor instead.
func (*Liveness) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{6}
}

func (x *Liveness) GetSetHeartbeat() bool {
	if x != nil {
		return x.SetHeartbeat
	}
	return false
}

func (x *Liveness) GetSuspend() bool {
	if x != nil {
		return x.Suspend
	}
	return false
}

func (x *Liveness) GetMaxSuspendWindow() *durationpb.Duration {
	if x != nil {
		return x.MaxSuspendWindow
	}
	return nil
}

func (x *Liveness) GetRttTimeout() *RttTimeout {
	if x != nil {
		return x.RttTimeout
	}
	return nil
}

// RttTimeout is the RTT-derived dead-peer timeout. Each side keeps, from
// its round-trip samples (Pong to its own Ping, and Ping.rtt, the peer's
// latest sample), a smoothed RTT and its variation as TCP does (RFC 6298):
// the first sample R sets SRTT = R and RTTVAR = R/2; each later one
// RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R|, then SRTT = 7/8·SRTT + 1/8·R. A
// side then declares its peer dead after
//
//	dead = min(dead_after, interval + max(floor, multiplier × (SRTT + 4·RTTVAR)))
//
// of receiving nothing, where interval is the heartbeat interval in force
// (Welcome.heartbeat_interval, or the last SetHeartbeat) and dead_after is
// interval × heartbeat_misses + grace (Welcome.dead_after until a
// SetHeartbeat changes the interval). So detection is never before
// interval + floor and never after dead_after. Until the first sample
// dead_after applies. tether's profiles: datacenter floor 1s, default 5s,
// mobile 10s; multiplier 3 in each. At loopback RTT the datacenter profile
// (1s interval) detects a dead peer in 2s; with 50 ms ± 30 ms of jitter,
// SRTT + 4·RTTVAR stays below 330 ms, 3 × that below the 1s floor.
type RttTimeout struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The least silence past the heartbeat interval before a peer is dead.
	Floor *durationpb.Duration `protobuf:"bytes,1,opt,name=floor,proto3" json:"floor,omitempty"`
	// k in k × (SRTT + 4·RTTVAR).
	Multiplier    uint32 `protobuf:"varint,2,opt,name=multiplier,proto3" json:"multiplier,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *RttTimeout) Reset() {
	*x = RttTimeout{}
	mi := &file_tether_v1_frames_proto_msgTypes[7]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *RttTimeout) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*RttTimeout) ProtoMessage() {}

func (x *RttTimeout) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[7]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use RttTimeout.ProtoReflect.Descriptor instead.
func (*RttTimeout) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{7}
}

func (x *RttTimeout) GetFloor() *durationpb.Duration {
	if x != nil {
		return x.Floor
	}
	return nil
}

func (x *RttTimeout) GetMultiplier() uint32 {
	if x != nil {
		return x.Multiplier
	}
	return 0
}

// SetHeartbeat tells the server the heartbeat interval the client uses
// from now on. The Go SDK's adaptive heartbeat sends it as it lengthens or
// shortens its interval. The server clamps interval into
// [Limits.min_heartbeat_interval, Limits.max_heartbeat_interval], pings
// at it when write-idle, and declares the client dead after interval ×
// heartbeat_misses + grace (or the RttTimeout formula with it) from the
// last frame received. Nothing answers it. Send it only to a server whose
// Welcome.liveness.set_heartbeat is true: an older one ends the stream
// with INVALID_ARGUMENT (unknown frame). A zero or negative interval is
// INVALID_ARGUMENT.
type SetHeartbeat struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The interval, within the Limits bounds.
	Interval      *durationpb.Duration `protobuf:"bytes,1,opt,name=interval,proto3" json:"interval,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *SetHeartbeat) Reset() {
	*x = SetHeartbeat{}
	mi := &file_tether_v1_frames_proto_msgTypes[8]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *SetHeartbeat) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*SetHeartbeat) ProtoMessage() {}

func (x *SetHeartbeat) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[8]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use SetHeartbeat.ProtoReflect.Descriptor instead.
func (*SetHeartbeat) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{8}
}

func (x *SetHeartbeat) GetInterval() *durationpb.Duration {
	if x != nil {
		return x.Interval
	}
	return nil
}

// Suspend tells the server that the application went to the background.
// The server marks the session suspended (AdminService shows
// SESSION_STATE_SUSPENDED), ends the stream with OK once the frames queued
// before it are written, and keeps the session, without any heartbeat, for
// window (clamped into [Welcome.resume_window,
// Welcome.liveness.max_suspend_window]; zero asks for that maximum)
// instead of the resume window. Messages for it are queued
// in its outbound log meanwhile (bounded as always, see "Flow control")
// and counted (tether_suspended_messages_total). The client resumes it as
// any other: Hello.resume, replay from last_received_seq + 1. Send it only
// to a server whose Welcome.liveness.suspend is true: an older one ends
// the stream with INVALID_ARGUMENT (unknown frame); the Go SDK then only
// closes its stream.
type Suspend struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// How long to keep the session; zero: the server's maximum. Negative is
	// INVALID_ARGUMENT.
	Window        *durationpb.Duration `protobuf:"bytes,1,opt,name=window,proto3" json:"window,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Suspend) Reset() {
	*x = Suspend{}
	mi := &file_tether_v1_frames_proto_msgTypes[9]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Suspend) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Suspend) ProtoMessage() {}

func (x *Suspend) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[9]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Suspend.ProtoReflect.Descriptor instead.
func (*Suspend) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{9}
}

func (x *Suspend) GetWindow() *durationpb.Duration {
	if x != nil {
		return x.Window
	}
	return nil
}

// TakeOver reports what a fresh session inherited from the session of its
// client id that it took over. That session's undelivered messages (sent
// and unacknowledged, or queued) are inherited: they are this session's
// first messages, in their order, before anything newer.
//
// With a shared broker, the session taken over may live on another node,
// or have lived on a node that died: its messages are inherited from its
// log, which the broker keeps, as they are on one node.
type TakeOver struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The id of the session taken over.
	SessionId string `protobuf:"bytes,1,opt,name=session_id,json=sessionId,proto3" json:"session_id,omitempty"`
	// How many messages were inherited.
	Inherited uint64 `protobuf:"varint,2,opt,name=inherited,proto3" json:"inherited,omitempty"`
	// The messages of the session taken over (in its seqs) that were not
	// inherited and will never arrive; unset when none.
	Dropped       *SeqRange `protobuf:"bytes,3,opt,name=dropped,proto3" json:"dropped,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *TakeOver) Reset() {
	*x = TakeOver{}
	mi := &file_tether_v1_frames_proto_msgTypes[10]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *TakeOver) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*TakeOver) ProtoMessage() {}

func (x *TakeOver) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[10]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use TakeOver.ProtoReflect.Descriptor instead.
func (*TakeOver) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{10}
}

func (x *TakeOver) GetSessionId() string {
	if x != nil {
		return x.SessionId
	}
	return ""
}

func (x *TakeOver) GetInherited() uint64 {
	if x != nil {
		return x.Inherited
	}
	return 0
}

func (x *TakeOver) GetDropped() *SeqRange {
	if x != nil {
		return x.Dropped
	}
	return nil
}

// SeqRange is an inclusive range of sequence numbers.
type SeqRange struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The first seq in the range.
	First uint64 `protobuf:"varint,1,opt,name=first,proto3" json:"first,omitempty"`
	// The last seq in the range.
	Last          uint64 `protobuf:"varint,2,opt,name=last,proto3" json:"last,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *SeqRange) Reset() {
	*x = SeqRange{}
	mi := &file_tether_v1_frames_proto_msgTypes[11]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *SeqRange) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*SeqRange) ProtoMessage() {}

func (x *SeqRange) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[11]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use SeqRange.ProtoReflect.Descriptor instead.
func (*SeqRange) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{11}
}

func (x *SeqRange) GetFirst() uint64 {
	if x != nil {
		return x.First
	}
	return 0
}

func (x *SeqRange) GetLast() uint64 {
	if x != nil {
		return x.Last
	}
	return 0
}

// Limits the server enforces on a stream: every limit it enforces is here,
// and the status or Error message of a breach names the field
// ("Welcome.limits.max_message_bytes"). (The per-principal rate of stream
// opens and calls is a deployment's, not a stream's: see
// TetherService.Connect and Publish.)
type Limits struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The largest payload (ClientMessage.payload), in bytes, of a client
	// message, and of a Publish. A larger client message fails: Error{seq,
	// INVALID_ARGUMENT}, then its Ack; the stream goes on.
	MaxMessageBytes uint32 `protobuf:"varint,1,opt,name=max_message_bytes,json=maxMessageBytes,proto3" json:"max_message_bytes,omitempty"`
	// How many server messages the session's outbound log holds: sent and
	// unacknowledged, or queued. A message that finds it full (or
	// max_outbound_bytes reached) meets overflow_policy; see "Flow control".
	MaxOutboundQueue uint32 `protobuf:"varint,2,opt,name=max_outbound_queue,json=maxOutboundQueue,proto3" json:"max_outbound_queue,omitempty"`
	// How many topics one session may subscribe to. A Subscribe beyond it
	// gets Error{INVALID_ARGUMENT, topic, request_id}; a Hello beyond it ends
	// the stream with INVALID_ARGUMENT.
	MaxTopics uint32 `protobuf:"varint,3,opt,name=max_topics,json=maxTopics,proto3" json:"max_topics,omitempty"`
	// The largest frame, in bytes, as gRPC counts it (the serialized
	// ConnectRequest, after decompression): max_message_bytes plus room for
	// the rest of a message frame. A larger frame ends the stream with
	// INVALID_ARGUMENT.
	MaxFrameBytes uint32 `protobuf:"varint,4,opt,name=max_frame_bytes,json=maxFrameBytes,proto3" json:"max_frame_bytes,omitempty"`
	// How many frames per second, of every kind (pings and acks included),
	// the server reads on this stream on average. Beyond it, and the burst,
	// the server reads more slowly (HTTP/2 flow control holds the client
	// back); the stream is not cut for it.
	MaxFramesPerSecond uint32 `protobuf:"varint,5,opt,name=max_frames_per_second,json=maxFramesPerSecond,proto3" json:"max_frames_per_second,omitempty"`
	// The burst allowed above max_frames_per_second: a stream that has been
	// quiet may send this many frames at once.
	MaxFrameBurst uint32 `protobuf:"varint,6,opt,name=max_frame_burst,json=maxFrameBurst,proto3" json:"max_frame_burst,omitempty"`
	// The bounds Hello.heartbeat_interval is clamped into (without an
	// error); Welcome.heartbeat_interval is the result.
	MinHeartbeatInterval *durationpb.Duration `protobuf:"bytes,7,opt,name=min_heartbeat_interval,json=minHeartbeatInterval,proto3" json:"min_heartbeat_interval,omitempty"`
	// See min_heartbeat_interval.
	MaxHeartbeatInterval *durationpb.Duration `protobuf:"bytes,8,opt,name=max_heartbeat_interval,json=maxHeartbeatInterval,proto3" json:"max_heartbeat_interval,omitempty"`
	// How many payload bytes the session's outbound log holds; see
	// max_outbound_queue.
	MaxOutboundBytes uint32 `protobuf:"varint,9,opt,name=max_outbound_bytes,json=maxOutboundBytes,proto3" json:"max_outbound_bytes,omitempty"`
	// What happens to a message that finds the outbound log full.
	OverflowPolicy OverflowPolicy `protobuf:"varint,10,opt,name=overflow_policy,json=overflowPolicy,proto3,enum=tether.v1.OverflowPolicy" json:"overflow_policy,omitempty"`
	unknownFields  protoimpl.UnknownFields
	sizeCache      protoimpl.SizeCache
}

func (x *Limits) Reset() {
	*x = Limits{}
	mi := &file_tether_v1_frames_proto_msgTypes[12]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Limits) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Limits) ProtoMessage() {}

func (x *Limits) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[12]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Limits.ProtoReflect.Descriptor instead.
func (*Limits) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{12}
}

func (x *Limits) GetMaxMessageBytes() uint32 {
	if x != nil {
		return x.MaxMessageBytes
	}
	return 0
}

func (x *Limits) GetMaxOutboundQueue() uint32 {
	if x != nil {
		return x.MaxOutboundQueue
	}
	return 0
}

func (x *Limits) GetMaxTopics() uint32 {
	if x != nil {
		return x.MaxTopics
	}
	return 0
}

func (x *Limits) GetMaxFrameBytes() uint32 {
	if x != nil {
		return x.MaxFrameBytes
	}
	return 0
}

func (x *Limits) GetMaxFramesPerSecond() uint32 {
	if x != nil {
		return x.MaxFramesPerSecond
	}
	return 0
}

func (x *Limits) GetMaxFrameBurst() uint32 {
	if x != nil {
		return x.MaxFrameBurst
	}
	return 0
}

func (x *Limits) GetMinHeartbeatInterval() *durationpb.Duration {
	if x != nil {
		return x.MinHeartbeatInterval
	}
	return nil
}

func (x *Limits) GetMaxHeartbeatInterval() *durationpb.Duration {
	if x != nil {
		return x.MaxHeartbeatInterval
	}
	return nil
}

func (x *Limits) GetMaxOutboundBytes() uint32 {
	if x != nil {
		return x.MaxOutboundBytes
	}
	return 0
}

func (x *Limits) GetOverflowPolicy() OverflowPolicy {
	if x != nil {
		return x.OverflowPolicy
	}
	return OverflowPolicy_OVERFLOW_POLICY_UNSPECIFIED
}

// Gap tells the client that server messages lost.first through lost.last
// will never arrive: the outbound log was full and its oldest messages
// were dropped (see "Flow control"). It is sent at once, ahead of queued
// messages. Some seqs of the range may have arrived already, or still
// arrive (they were in flight): the client reports as lost only those it
// has not received, counts the whole range as received, and drops a
// message at or below lost.last that arrives after the Gap. It may ack
// lost.last, and should: the messages of the range that were already sent
// count against the receive window until an Ack covers them.
type Gap struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The seqs that will never arrive.
	Lost *SeqRange `protobuf:"bytes,1,opt,name=lost,proto3" json:"lost,omitempty"`
	// Why, for the application's logs.
	Reason        string `protobuf:"bytes,2,opt,name=reason,proto3" json:"reason,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Gap) Reset() {
	*x = Gap{}
	mi := &file_tether_v1_frames_proto_msgTypes[13]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Gap) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Gap) ProtoMessage() {}

func (x *Gap) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[13]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Gap.ProtoReflect.Descriptor instead.
func (*Gap) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{13}
}

func (x *Gap) GetLost() *SeqRange {
	if x != nil {
		return x.Lost
	}
	return nil
}

func (x *Gap) GetReason() string {
	if x != nil {
		return x.Reason
	}
	return ""
}

// Ping asks the peer to answer with Pong. Sent only by a side that has been
// write-idle for the heartbeat interval.
type Ping struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// Chosen by the sender; echoed in Pong.
	Id uint64 `protobuf:"varint,1,opt,name=id,proto3" json:"id,omitempty"`
	// The sender's clock when sent; echoed in Pong so the sender can measure
	// the round-trip time without keeping state.
	SentAt *timestamppb.Timestamp `protobuf:"bytes,2,opt,name=sent_at,json=sentAt,proto3" json:"sent_at,omitempty"`
	// The sender's latest round-trip sample (from its previous Ping's Pong),
	// unset before it has one. The side that answers pings and sends few of
	// its own (the server, for a client that drives the heartbeat) feeds it
	// to its RTT estimator (see RttTimeout). Old receivers ignore it.
	Rtt           *durationpb.Duration `protobuf:"bytes,3,opt,name=rtt,proto3" json:"rtt,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Ping) Reset() {
	*x = Ping{}
	mi := &file_tether_v1_frames_proto_msgTypes[14]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Ping) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Ping) ProtoMessage() {}

func (x *Ping) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[14]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Ping.ProtoReflect.Descriptor instead.
func (*Ping) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{14}
}

func (x *Ping) GetId() uint64 {
	if x != nil {
		return x.Id
	}
	return 0
}

func (x *Ping) GetSentAt() *timestamppb.Timestamp {
	if x != nil {
		return x.SentAt
	}
	return nil
}

func (x *Ping) GetRtt() *durationpb.Duration {
	if x != nil {
		return x.Rtt
	}
	return nil
}

// Pong answers a Ping.
type Pong struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// Ping.id, echoed.
	Id uint64 `protobuf:"varint,1,opt,name=id,proto3" json:"id,omitempty"`
	// Ping.sent_at, echoed.
	SentAt        *timestamppb.Timestamp `protobuf:"bytes,2,opt,name=sent_at,json=sentAt,proto3" json:"sent_at,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Pong) Reset() {
	*x = Pong{}
	mi := &file_tether_v1_frames_proto_msgTypes[15]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Pong) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Pong) ProtoMessage() {}

func (x *Pong) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[15]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Pong.ProtoReflect.Descriptor instead.
func (*Pong) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{15}
}

func (x *Pong) GetId() uint64 {
	if x != nil {
		return x.Id
	}
	return 0
}

func (x *Pong) GetSentAt() *timestamppb.Timestamp {
	if x != nil {
		return x.SentAt
	}
	return nil
}

// ClientMessage is a business message from the client.
type ClientMessage struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The per-session sequence number: last sent + 1. Zero lets the server
	// number it (see the file comment).
	Seq uint64 `protobuf:"varint,1,opt,name=seq,proto3" json:"seq,omitempty"`
	// Where the message goes. Unset means "a reply": it goes to the session
	// whose request this session received with the same correlation_id.
	//
	// Types that are valid to be assigned to Target:
	//
	//	*ClientMessage_Topic
	//	*ClientMessage_SessionId
	//	*ClientMessage_ClientId
	Target isClientMessage_Target `protobuf_oneof:"target"`
	// The payload, opaque to tether.
	Payload []byte `protobuf:"bytes,5,opt,name=payload,proto3" json:"payload,omitempty"`
	// A MIME type for the payload, passed through.
	ContentType string `protobuf:"bytes,6,opt,name=content_type,json=contentType,proto3" json:"content_type,omitempty"`
	// Application headers, passed through.
	Headers map[string]string `protobuf:"bytes,7,rep,name=headers,proto3" json:"headers,omitempty" protobuf_key:"bytes,1,opt,name=key" protobuf_val:"bytes,2,opt,name=value"`
	// Links a request and its reply. A receiver replies by sending a message
	// with the same correlation_id and no target.
	CorrelationId string `protobuf:"bytes,8,opt,name=correlation_id,json=correlationId,proto3" json:"correlation_id,omitempty"`
	// Optional. The server drops a message whose idempotency key it has seen
	// from the same client id within its dedupe window (and acks it as if
	// delivered), so a client that re-sends after a crash or on another
	// stream has an effectively-once effect.
	IdempotencyKey string `protobuf:"bytes,9,opt,name=idempotency_key,json=idempotencyKey,proto3" json:"idempotency_key,omitempty"`
	// True when the client library generated idempotency_key for its own
	// re-sends, not the application for its own dedupe. Such a key repeats
	// only when a message is re-sent into a fresh session after a failed
	// resume, as one of that session's first messages (a client re-sends
	// into the session opened for a Hello whose resume failed, never into
	// one it opened without asking to resume). So the server checks it only
	// for seq ≤ 4096 of a session (with a shared broker, only of a session
	// opened for a failed resume), and remembers it only while the
	// message may still be re-sent: handled, but not yet acknowledged when
	// the stream ended. The application's keys are checked and remembered
	// for the whole dedupe window.
	GeneratedKey bool `protobuf:"varint,10,opt,name=generated_key,json=generatedKey,proto3" json:"generated_key,omitempty"`
	// Ask the server to ack this message at once, not in a batch: a sender
	// waiting for the outcome (the Go SDK's SendWait and Request) sets it.
	AckNow        bool `protobuf:"varint,11,opt,name=ack_now,json=ackNow,proto3" json:"ack_now,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *ClientMessage) Reset() {
	*x = ClientMessage{}
	mi := &file_tether_v1_frames_proto_msgTypes[16]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *ClientMessage) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*ClientMessage) ProtoMessage() {}

func (x *ClientMessage) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[16]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use ClientMessage.ProtoReflect.Descriptor instead.
func (*ClientMessage) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{16}
}

func (x *ClientMessage) GetSeq() uint64 {
	if x != nil {
		return x.Seq
	}
	return 0
}

func (x *ClientMessage) GetTarget() isClientMessage_Target {
	if x != nil {
		return x.Target
	}
	return nil
}

func (x *ClientMessage) GetTopic() string {
	if x != nil {
		if x, ok := x.Target.(*ClientMessage_Topic); ok {
			return x.Topic
		}
	}
	return ""
}

func (x *ClientMessage) GetSessionId() string {
	if x != nil {
		if x, ok := x.Target.(*ClientMessage_SessionId); ok {
			return x.SessionId
		}
	}
	return ""
}

func (x *ClientMessage) GetClientId() string {
	if x != nil {
		if x, ok := x.Target.(*ClientMessage_ClientId); ok {
			return x.ClientId
		}
	}
	return ""
}

func (x *ClientMessage) GetPayload() []byte {
	if x != nil {
		return x.Payload
	}
	return nil
}

func (x *ClientMessage) GetContentType() string {
	if x != nil {
		return x.ContentType
	}
	return ""
}

func (x *ClientMessage) GetHeaders() map[string]string {
	if x != nil {
		return x.Headers
	}
	return nil
}

func (x *ClientMessage) GetCorrelationId() string {
	if x != nil {
		return x.CorrelationId
	}
	return ""
}

func (x *ClientMessage) GetIdempotencyKey() string {
	if x != nil {
		return x.IdempotencyKey
	}
	return ""
}

func (x *ClientMessage) GetGeneratedKey() bool {
	if x != nil {
		return x.GeneratedKey
	}
	return false
}

func (x *ClientMessage) GetAckNow() bool {
	if x != nil {
		return x.AckNow
	}
	return false
}

type isClientMessage_Target interface {
	isClientMessage_Target()
}

type ClientMessage_Topic struct {
	// Every session subscribed to this topic.
	Topic string `protobuf:"bytes,2,opt,name=topic,proto3,oneof"`
}

type ClientMessage_SessionId struct {
	// One session, by id.
	SessionId string `protobuf:"bytes,3,opt,name=session_id,json=sessionId,proto3,oneof"`
}

type ClientMessage_ClientId struct {
	// The live session of this client id.
	ClientId string `protobuf:"bytes,4,opt,name=client_id,json=clientId,proto3,oneof"`
}

func (*ClientMessage_Topic) isClientMessage_Target() {}

func (*ClientMessage_SessionId) isClientMessage_Target() {}

func (*ClientMessage_ClientId) isClientMessage_Target() {}

// ServerMessage is a business message delivered to the client.
type ServerMessage struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The per-session sequence number, strictly increasing by one.
	Seq uint64 `protobuf:"varint,1,opt,name=seq,proto3" json:"seq,omitempty"`
	// The topic it was published to, when it was published to one.
	Topic string `protobuf:"bytes,2,opt,name=topic,proto3" json:"topic,omitempty"`
	// The payload, opaque to tether.
	Payload []byte `protobuf:"bytes,3,opt,name=payload,proto3" json:"payload,omitempty"`
	// The content type given by the sender.
	ContentType string `protobuf:"bytes,4,opt,name=content_type,json=contentType,proto3" json:"content_type,omitempty"`
	// Application headers given by the sender.
	Headers map[string]string `protobuf:"bytes,5,rep,name=headers,proto3" json:"headers,omitempty" protobuf_key:"bytes,1,opt,name=key" protobuf_val:"bytes,2,opt,name=value"`
	// The sender's correlation id. Reply with a ClientMessage carrying the
	// same correlation_id and no target.
	CorrelationId string `protobuf:"bytes,6,opt,name=correlation_id,json=correlationId,proto3" json:"correlation_id,omitempty"`
	// Who sent it.
	Source *Source `protobuf:"bytes,7,opt,name=source,proto3" json:"source,omitempty"`
	// When the server accepted it.
	PublishedAt   *timestamppb.Timestamp `protobuf:"bytes,8,opt,name=published_at,json=publishedAt,proto3" json:"published_at,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *ServerMessage) Reset() {
	*x = ServerMessage{}
	mi := &file_tether_v1_frames_proto_msgTypes[17]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *ServerMessage) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*ServerMessage) ProtoMessage() {}

func (x *ServerMessage) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[17]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use ServerMessage.ProtoReflect.Descriptor instead.
func (*ServerMessage) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{17}
}

func (x *ServerMessage) GetSeq() uint64 {
	if x != nil {
		return x.Seq
	}
	return 0
}

func (x *ServerMessage) GetTopic() string {
	if x != nil {
		return x.Topic
	}
	return ""
}

func (x *ServerMessage) GetPayload() []byte {
	if x != nil {
		return x.Payload
	}
	return nil
}

func (x *ServerMessage) GetContentType() string {
	if x != nil {
		return x.ContentType
	}
	return ""
}

func (x *ServerMessage) GetHeaders() map[string]string {
	if x != nil {
		return x.Headers
	}
	return nil
}

func (x *ServerMessage) GetCorrelationId() string {
	if x != nil {
		return x.CorrelationId
	}
	return ""
}

func (x *ServerMessage) GetSource() *Source {
	if x != nil {
		return x.Source
	}
	return nil
}

func (x *ServerMessage) GetPublishedAt() *timestamppb.Timestamp {
	if x != nil {
		return x.PublishedAt
	}
	return nil
}

// Source identifies a message's sender.
type Source struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The sending session's id; empty for messages published with
	// TetherService.Publish or by the server's own handler.
	SessionId string `protobuf:"bytes,1,opt,name=session_id,json=sessionId,proto3" json:"session_id,omitempty"`
	// The sending session's client id, if it has one.
	ClientId      string `protobuf:"bytes,2,opt,name=client_id,json=clientId,proto3" json:"client_id,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Source) Reset() {
	*x = Source{}
	mi := &file_tether_v1_frames_proto_msgTypes[18]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Source) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Source) ProtoMessage() {}

func (x *Source) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[18]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Source.ProtoReflect.Descriptor instead.
func (*Source) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{18}
}

func (x *Source) GetSessionId() string {
	if x != nil {
		return x.SessionId
	}
	return ""
}

func (x *Source) GetClientId() string {
	if x != nil {
		return x.ClientId
	}
	return ""
}

// Ack acknowledges cumulatively: every message with seq ≤ this was received
// and is done with. From the server: each client message up to seq was
// handled or failed (its Error frame came before); a refused message is not
// acked until a re-send of it is. From the client: the server may forget
// every server message up to seq. An Ack is never taken back: one at or
// below an earlier Ack (stale, overtaken) is ignored; one above the highest
// seq sent ends the stream with INVALID_ARGUMENT.
type Ack struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The highest contiguous seq received.
	Seq           uint64 `protobuf:"varint,1,opt,name=seq,proto3" json:"seq,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Ack) Reset() {
	*x = Ack{}
	mi := &file_tether_v1_frames_proto_msgTypes[19]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Ack) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Ack) ProtoMessage() {}

func (x *Ack) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[19]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Ack.ProtoReflect.Descriptor instead.
func (*Ack) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{19}
}

func (x *Ack) GetSeq() uint64 {
	if x != nil {
		return x.Seq
	}
	return 0
}

// Subscribe adds topics to the session, all or none: see "Subscriptions"
// above. A topic already held is not an error. Success is not answered.
type Subscribe struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// Topic names. A name is 1 to 256 bytes of UTF-8 without spaces or
	// control characters.
	Topics []string `protobuf:"bytes,1,rep,name=topics,proto3" json:"topics,omitempty"`
	// Optional, chosen by the client: an Error answering this frame carries
	// it in Error.request_id.
	RequestId     uint64 `protobuf:"varint,2,opt,name=request_id,json=requestId,proto3" json:"request_id,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Subscribe) Reset() {
	*x = Subscribe{}
	mi := &file_tether_v1_frames_proto_msgTypes[20]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Subscribe) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Subscribe) ProtoMessage() {}

func (x *Subscribe) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[20]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Subscribe.ProtoReflect.Descriptor instead.
func (*Subscribe) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{20}
}

func (x *Subscribe) GetTopics() []string {
	if x != nil {
		return x.Topics
	}
	return nil
}

func (x *Subscribe) GetRequestId() uint64 {
	if x != nil {
		return x.RequestId
	}
	return 0
}

// Unsubscribe removes topics from the session, all or none: an invalid
// topic name gets Error{INVALID_ARGUMENT, topic, request_id} and nothing
// changes. A topic not held is not an error. Success is not answered.
type Unsubscribe struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// Topic names.
	Topics []string `protobuf:"bytes,1,rep,name=topics,proto3" json:"topics,omitempty"`
	// Optional, chosen by the client: an Error answering this frame carries
	// it in Error.request_id.
	RequestId     uint64 `protobuf:"varint,2,opt,name=request_id,json=requestId,proto3" json:"request_id,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Unsubscribe) Reset() {
	*x = Unsubscribe{}
	mi := &file_tether_v1_frames_proto_msgTypes[21]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Unsubscribe) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Unsubscribe) ProtoMessage() {}

func (x *Unsubscribe) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[21]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Unsubscribe.ProtoReflect.Descriptor instead.
func (*Unsubscribe) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{21}
}

func (x *Unsubscribe) GetTopics() []string {
	if x != nil {
		return x.Topics
	}
	return nil
}

func (x *Unsubscribe) GetRequestId() uint64 {
	if x != nil {
		return x.RequestId
	}
	return 0
}

// Close ends the session for good: no resume. The server answers by ending
// the stream with OK.
type Close struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// Why, for the server's logs and flight recorder.
	Reason        string `protobuf:"bytes,1,opt,name=reason,proto3" json:"reason,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Close) Reset() {
	*x = Close{}
	mi := &file_tether_v1_frames_proto_msgTypes[22]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Close) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Close) ProtoMessage() {}

func (x *Close) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[22]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Close.ProtoReflect.Descriptor instead.
func (*Close) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{22}
}

func (x *Close) GetReason() string {
	if x != nil {
		return x.Reason
	}
	return ""
}

// GoAway tells the client that the server will end this stream soon and
// what to do then. The reason alone says whether to reconnect.
type GoAway struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// Why the stream ends; see GoAwayReason for whether to reconnect.
	Reason GoAwayReason `protobuf:"varint,1,opt,name=reason,proto3,enum=tether.v1.GoAwayReason" json:"reason,omitempty"`
	// Human-readable detail.
	Message string `protobuf:"bytes,2,opt,name=message,proto3" json:"message,omitempty"`
	// Wait at least this long before reconnecting…
	RetryAfter *durationpb.Duration `protobuf:"bytes,3,opt,name=retry_after,json=retryAfter,proto3" json:"retry_after,omitempty"`
	// …plus a uniformly random delay in [0, retry_jitter), so that a fleet of
	// clients reconnects spread out, not as a storm.
	RetryJitter *durationpb.Duration `protobuf:"bytes,4,opt,name=retry_jitter,json=retryJitter,proto3" json:"retry_jitter,omitempty"`
	// A backend address to try first, when the server knows a good one.
	SuggestedBackend string `protobuf:"bytes,5,opt,name=suggested_backend,json=suggestedBackend,proto3" json:"suggested_backend,omitempty"`
	unknownFields    protoimpl.UnknownFields
	sizeCache        protoimpl.SizeCache
}

func (x *GoAway) Reset() {
	*x = GoAway{}
	mi := &file_tether_v1_frames_proto_msgTypes[23]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *GoAway) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*GoAway) ProtoMessage() {}

func (x *GoAway) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[23]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use GoAway.ProtoReflect.Descriptor instead.
func (*GoAway) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{23}
}

func (x *GoAway) GetReason() GoAwayReason {
	if x != nil {
		return x.Reason
	}
	return GoAwayReason_GO_AWAY_REASON_UNSPECIFIED
}

func (x *GoAway) GetMessage() string {
	if x != nil {
		return x.Message
	}
	return ""
}

func (x *GoAway) GetRetryAfter() *durationpb.Duration {
	if x != nil {
		return x.RetryAfter
	}
	return nil
}

func (x *GoAway) GetRetryJitter() *durationpb.Duration {
	if x != nil {
		return x.RetryJitter
	}
	return nil
}

func (x *GoAway) GetSuggestedBackend() string {
	if x != nil {
		return x.SuggestedBackend
	}
	return ""
}

// Error reports a non-fatal problem with one frame; the stream goes on. It
// references the frame it answers: seq for a ClientMessage, request_id (and
// topic) for a Subscribe or Unsubscribe. Problems that end the stream are
// its status instead (see TetherService.Connect).
type Error struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// A gRPC status code number (google.rpc.Code), e.g. 7 PERMISSION_DENIED.
	// For a client message (seq set), UNAVAILABLE (14), DEADLINE_EXCEEDED
	// (4), ABORTED (10), RESOURCE_EXHAUSTED (8) and CANCELED (1) mean
	// "refused for now": it is not acknowledged; send it again, and
	// everything after it, from seq. Any other code means "failed": it is
	// acknowledged; do not re-send it. See "What becomes of a client
	// message" above.
	Code uint32 `protobuf:"varint,1,opt,name=code,proto3" json:"code,omitempty"`
	// What went wrong and what to do about it.
	Message string `protobuf:"bytes,2,opt,name=message,proto3" json:"message,omitempty"`
	// The seq of the client message it concerns, if any (0 otherwise; a
	// message the server numbered, sent with seq 0, gets the seq the server
	// gave it).
	Seq uint64 `protobuf:"varint,3,opt,name=seq,proto3" json:"seq,omitempty"`
	// The request_id of the Subscribe or Unsubscribe frame it answers (0 when
	// that frame set none, or the Error answers a client message).
	RequestId uint64 `protobuf:"varint,4,opt,name=request_id,json=requestId,proto3" json:"request_id,omitempty"`
	// The topic of a Subscribe or Unsubscribe that it concerns: the first
	// one at fault (for max_topics, the one that went over).
	Topic         string `protobuf:"bytes,5,opt,name=topic,proto3" json:"topic,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *Error) Reset() {
	*x = Error{}
	mi := &file_tether_v1_frames_proto_msgTypes[24]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *Error) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*Error) ProtoMessage() {}

func (x *Error) ProtoReflect() protoreflect.Message {
	mi := &file_tether_v1_frames_proto_msgTypes[24]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use Error.ProtoReflect.Descriptor instead.
func (*Error) Descriptor() ([]byte, []int) {
	return file_tether_v1_frames_proto_rawDescGZIP(), []int{24}
}

func (x *Error) GetCode() uint32 {
	if x != nil {
		return x.Code
	}
	return 0
}

func (x *Error) GetMessage() string {
	if x != nil {
		return x.Message
	}
	return ""
}

func (x *Error) GetSeq() uint64 {
	if x != nil {
		return x.Seq
	}
	return 0
}

func (x *Error) GetRequestId() uint64 {
	if x != nil {
		return x.RequestId
	}
	return 0
}

func (x *Error) GetTopic() string {
	if x != nil {
		return x.Topic
	}
	return ""
}

var File_tether_v1_frames_proto protoreflect.FileDescriptor

const file_tether_v1_frames_proto_rawDesc = "" +
	"\n" +
	"\x16tether/v1/frames.proto\x12\ttether.v1\x1a\x1egoogle/protobuf/duration.proto\x1a\x1fgoogle/protobuf/timestamp.proto\"\x88\x03\n" +
	"\x05Hello\x12\x1b\n" +
	"\tclient_id\x18\x01 \x01(\tR\bclientId\x12H\n" +
	"\x12heartbeat_interval\x18\x02 \x01(\v2\x19.google.protobuf.DurationR\x11heartbeatInterval\x12\x16\n" +
	"\x06topics\x18\x03 \x03(\tR\x06topics\x12)\n" +
	"\x06resume\x18\x04 \x01(\v2\x11.tether.v1.ResumeR\x06resume\x12:\n" +
	"\bmetadata\x18\x05 \x03(\v2\x1e.tether.v1.Hello.MetadataEntryR\bmetadata\x12?\n" +
	"\x0ereceive_window\x18\x06 \x01(\v2\x18.tether.v1.ReceiveWindowR\rreceiveWindow\x12\x1b\n" +
	"\tmax_batch\x18\a \x01(\rR\bmaxBatch\x1a;\n" +
	"\rMetadataEntry\x12\x10\n" +
	"\x03key\x18\x01 \x01(\tR\x03key\x12\x14\n" +
	"\x05value\x18\x02 \x01(\tR\x05value:\x028\x01\"J\n" +
	"\x12ServerMessageBatch\x124\n" +
	"\bmessages\x18\x01 \x03(\v2\x18.tether.v1.ServerMessageR\bmessages\"J\n" +
	"\x12ClientMessageBatch\x124\n" +
	"\bmessages\x18\x01 \x03(\v2\x18.tether.v1.ClientMessageR\bmessages\"A\n" +
	"\rReceiveWindow\x12\x1a\n" +
	"\bmessages\x18\x01 \x01(\rR\bmessages\x12\x14\n" +
	"\x05bytes\x18\x02 \x01(\rR\x05bytes\"v\n" +
	"\x06Resume\x12\x1d\n" +
	"\n" +
	"session_id\x18\x01 \x01(\tR\tsessionId\x12!\n" +
	"\fresume_token\x18\x02 \x01(\tR\vresumeToken\x12*\n" +
	"\x11last_received_seq\x18\x03 \x01(\x04R\x0flastReceivedSeq\"\xbb\a\n" +
	"\aWelcome\x12\x1d\n" +
	"\n" +
	"session_id\x18\x01 \x01(\tR\tsessionId\x12!\n" +
	"\fresume_token\x18\x02 \x01(\tR\vresumeToken\x12\x18\n" +
	"\aresumed\x18\x03 \x01(\bR\aresumed\x12<\n" +
	"\rresume_status\x18\x04 \x01(\x0e2\x17.tether.v1.ResumeStatusR\fresumeStatus\x12'\n" +
	"\x04lost\x18\x05 \x01(\v2\x13.tether.v1.SeqRangeR\x04lost\x12\x1b\n" +
	"\tserver_id\x18\x06 \x01(\tR\bserverId\x12H\n" +
	"\x12heartbeat_interval\x18\a \x01(\v2\x19.google.protobuf.DurationR\x11heartbeatInterval\x12)\n" +
	"\x10heartbeat_misses\x18\b \x01(\rR\x0fheartbeatMisses\x12G\n" +
	"\x12keepalive_min_time\x18\t \x01(\v2\x19.google.protobuf.DurationR\x10keepaliveMinTime\x12>\n" +
	"\rresume_window\x18\n" +
	" \x01(\v2\x19.google.protobuf.DurationR\fresumeWindow\x12*\n" +
	"\x11last_received_seq\x18\v \x01(\x04R\x0flastReceivedSeq\x12\"\n" +
	"\rlast_sent_seq\x18\f \x01(\x04R\vlastSentSeq\x12)\n" +
	"\x06limits\x18\r \x01(\v2\x11.tether.v1.LimitsR\x06limits\x12\x16\n" +
	"\x06topics\x18\x0e \x03(\tR\x06topics\x128\n" +
	"\n" +
	"dead_after\x18\x0f \x01(\v2\x19.google.protobuf.DurationR\tdeadAfter\x12'\n" +
	"\x0fresume_anywhere\x18\x10 \x01(\bR\x0eresumeAnywhere\x12\x1b\n" +
	"\tclient_id\x18\x11 \x01(\tR\bclientId\x12?\n" +
	"\x0ereceive_window\x18\x12 \x01(\v2\x18.tether.v1.ReceiveWindowR\rreceiveWindow\x120\n" +
	"\ttook_over\x18\x13 \x01(\v2\x13.tether.v1.TakeOverR\btookOver\x12\x1b\n" +
	"\tmax_batch\x18\x14 \x01(\rR\bmaxBatch\x12/\n" +
	"\bliveness\x18\x15 \x01(\v2\x13.tether.v1.LivenessR\bliveness\"\xca\x01\n" +
	"\bLiveness\x12#\n" +
	"\rset_heartbeat\x18\x01 \x01(\bR\fsetHeartbeat\x12\x18\n" +
	"\asuspend\x18\x02 \x01(\bR\asuspend\x12G\n" +
	"\x12max_suspend_window\x18\x03 \x01(\v2\x19.google.protobuf.DurationR\x10maxSuspendWindow\x126\n" +
	"\vrtt_timeout\x18\x04 \x01(\v2\x15.tether.v1.RttTimeoutR\n" +
	"rttTimeout\"]\n" +
	"\n" +
	"RttTimeout\x12/\n" +
	"\x05floor\x18\x01 \x01(\v2\x19.google.protobuf.DurationR\x05floor\x12\x1e\n" +
	"\n" +
	"multiplier\x18\x02 \x01(\rR\n" +
	"multiplier\"E\n" +
	"\fSetHeartbeat\x125\n" +
	"\binterval\x18\x01 \x01(\v2\x19.google.protobuf.DurationR\binterval\"<\n" +
	"\aSuspend\x121\n" +
	"\x06window\x18\x01 \x01(\v2\x19.google.protobuf.DurationR\x06window\"v\n" +
	"\bTakeOver\x12\x1d\n" +
	"\n" +
	"session_id\x18\x01 \x01(\tR\tsessionId\x12\x1c\n" +
	"\tinherited\x18\x02 \x01(\x04R\tinherited\x12-\n" +
	"\adropped\x18\x03 \x01(\v2\x13.tether.v1.SeqRangeR\adropped\"4\n" +
	"\bSeqRange\x12\x14\n" +
	"\x05first\x18\x01 \x01(\x04R\x05first\x12\x12\n" +
	"\x04last\x18\x02 \x01(\x04R\x04last\"\x98\x04\n" +
	"\x06Limits\x12*\n" +
	"\x11max_message_bytes\x18\x01 \x01(\rR\x0fmaxMessageBytes\x12,\n" +
	"\x12max_outbound_queue\x18\x02 \x01(\rR\x10maxOutboundQueue\x12\x1d\n" +
	"\n" +
	"max_topics\x18\x03 \x01(\rR\tmaxTopics\x12&\n" +
	"\x0fmax_frame_bytes\x18\x04 \x01(\rR\rmaxFrameBytes\x121\n" +
	"\x15max_frames_per_second\x18\x05 \x01(\rR\x12maxFramesPerSecond\x12&\n" +
	"\x0fmax_frame_burst\x18\x06 \x01(\rR\rmaxFrameBurst\x12O\n" +
	"\x16min_heartbeat_interval\x18\a \x01(\v2\x19.google.protobuf.DurationR\x14minHeartbeatInterval\x12O\n" +
	"\x16max_heartbeat_interval\x18\b \x01(\v2\x19.google.protobuf.DurationR\x14maxHeartbeatInterval\x12,\n" +
	"\x12max_outbound_bytes\x18\t \x01(\rR\x10maxOutboundBytes\x12B\n" +
	"\x0foverflow_policy\x18\n" +
	" \x01(\x0e2\x19.tether.v1.OverflowPolicyR\x0eoverflowPolicy\"F\n" +
	"\x03Gap\x12'\n" +
	"\x04lost\x18\x01 \x01(\v2\x13.tether.v1.SeqRangeR\x04lost\x12\x16\n" +
	"\x06reason\x18\x02 \x01(\tR\x06reason\"x\n" +
	"\x04Ping\x12\x0e\n" +
	"\x02id\x18\x01 \x01(\x04R\x02id\x123\n" +
	"\asent_at\x18\x02 \x01(\v2\x1a.google.protobuf.TimestampR\x06sentAt\x12+\n" +
	"\x03rtt\x18\x03 \x01(\v2\x19.google.protobuf.DurationR\x03rtt\"K\n" +
	"\x04Pong\x12\x0e\n" +
	"\x02id\x18\x01 \x01(\x04R\x02id\x123\n" +
	"\asent_at\x18\x02 \x01(\v2\x1a.google.protobuf.TimestampR\x06sentAt\"\xcb\x03\n" +
	"\rClientMessage\x12\x10\n" +
	"\x03seq\x18\x01 \x01(\x04R\x03seq\x12\x16\n" +
	"\x05topic\x18\x02 \x01(\tH\x00R\x05topic\x12\x1f\n" +
	"\n" +
	"session_id\x18\x03 \x01(\tH\x00R\tsessionId\x12\x1d\n" +
	"\tclient_id\x18\x04 \x01(\tH\x00R\bclientId\x12\x18\n" +
	"\apayload\x18\x05 \x01(\fR\apayload\x12!\n" +
	"\fcontent_type\x18\x06 \x01(\tR\vcontentType\x12?\n" +
	"\aheaders\x18\a \x03(\v2%.tether.v1.ClientMessage.HeadersEntryR\aheaders\x12%\n" +
	"\x0ecorrelation_id\x18\b \x01(\tR\rcorrelationId\x12'\n" +
	"\x0fidempotency_key\x18\t \x01(\tR\x0eidempotencyKey\x12#\n" +
	"\rgenerated_key\x18\n" +
	" \x01(\bR\fgeneratedKey\x12\x17\n" +
	"\aack_now\x18\v \x01(\bR\x06ackNow\x1a:\n" +
	"\fHeadersEntry\x12\x10\n" +
	"\x03key\x18\x01 \x01(\tR\x03key\x12\x14\n" +
	"\x05value\x18\x02 \x01(\tR\x05value:\x028\x01B\b\n" +
	"\x06target\"\x82\x03\n" +
	"\rServerMessage\x12\x10\n" +
	"\x03seq\x18\x01 \x01(\x04R\x03seq\x12\x14\n" +
	"\x05topic\x18\x02 \x01(\tR\x05topic\x12\x18\n" +
	"\apayload\x18\x03 \x01(\fR\apayload\x12!\n" +
	"\fcontent_type\x18\x04 \x01(\tR\vcontentType\x12?\n" +
	"\aheaders\x18\x05 \x03(\v2%.tether.v1.ServerMessage.HeadersEntryR\aheaders\x12%\n" +
	"\x0ecorrelation_id\x18\x06 \x01(\tR\rcorrelationId\x12)\n" +
	"\x06source\x18\a \x01(\v2\x11.tether.v1.SourceR\x06source\x12=\n" +
	"\fpublished_at\x18\b \x01(\v2\x1a.google.protobuf.TimestampR\vpublishedAt\x1a:\n" +
	"\fHeadersEntry\x12\x10\n" +
	"\x03key\x18\x01 \x01(\tR\x03key\x12\x14\n" +
	"\x05value\x18\x02 \x01(\tR\x05value:\x028\x01\"D\n" +
	"\x06Source\x12\x1d\n" +
	"\n" +
	"session_id\x18\x01 \x01(\tR\tsessionId\x12\x1b\n" +
	"\tclient_id\x18\x02 \x01(\tR\bclientId\"\x17\n" +
	"\x03Ack\x12\x10\n" +
	"\x03seq\x18\x01 \x01(\x04R\x03seq\"B\n" +
	"\tSubscribe\x12\x16\n" +
	"\x06topics\x18\x01 \x03(\tR\x06topics\x12\x1d\n" +
	"\n" +
	"request_id\x18\x02 \x01(\x04R\trequestId\"D\n" +
	"\vUnsubscribe\x12\x16\n" +
	"\x06topics\x18\x01 \x03(\tR\x06topics\x12\x1d\n" +
	"\n" +
	"request_id\x18\x02 \x01(\x04R\trequestId\"\x1f\n" +
	"\x05Close\x12\x16\n" +
	"\x06reason\x18\x01 \x01(\tR\x06reason\"\xfa\x01\n" +
	"\x06GoAway\x12/\n" +
	"\x06reason\x18\x01 \x01(\x0e2\x17.tether.v1.GoAwayReasonR\x06reason\x12\x18\n" +
	"\amessage\x18\x02 \x01(\tR\amessage\x12:\n" +
	"\vretry_after\x18\x03 \x01(\v2\x19.google.protobuf.DurationR\n" +
	"retryAfter\x12<\n" +
	"\fretry_jitter\x18\x04 \x01(\v2\x19.google.protobuf.DurationR\vretryJitter\x12+\n" +
	"\x11suggested_backend\x18\x05 \x01(\tR\x10suggestedBackend\"|\n" +
	"\x05Error\x12\x12\n" +
	"\x04code\x18\x01 \x01(\rR\x04code\x12\x18\n" +
	"\amessage\x18\x02 \x01(\tR\amessage\x12\x10\n" +
	"\x03seq\x18\x03 \x01(\x04R\x03seq\x12\x1d\n" +
	"\n" +
	"request_id\x18\x04 \x01(\x04R\trequestId\x12\x14\n" +
	"\x05topic\x18\x05 \x01(\tR\x05topic*\xab\x02\n" +
	"\fResumeStatus\x12\x1d\n" +
	"\x19RESUME_STATUS_UNSPECIFIED\x10\x00\x12\x1f\n" +
	"\x1bRESUME_STATUS_NOT_REQUESTED\x10\x01\x12\x19\n" +
	"\x15RESUME_STATUS_RESUMED\x10\x02\x12\"\n" +
	"\x1eRESUME_STATUS_RESUMED_WITH_GAP\x10\x03\x12!\n" +
	"\x1dRESUME_STATUS_UNKNOWN_SESSION\x10\x04\x12\x19\n" +
	"\x15RESUME_STATUS_EXPIRED\x10\x05\x12$\n" +
	" RESUME_STATUS_PRINCIPAL_MISMATCH\x10\x06\x12\x18\n" +
	"\x14RESUME_STATUS_CLOSED\x10\a\x12\x1e\n" +
	"\x1aRESUME_STATUS_SEQ_MISMATCH\x10\b*\x94\x01\n" +
	"\x0eOverflowPolicy\x12\x1f\n" +
	"\x1bOVERFLOW_POLICY_UNSPECIFIED\x10\x00\x12 \n" +
	"\x1cOVERFLOW_POLICY_BACKPRESSURE\x10\x01\x12\x1f\n" +
	"\x1bOVERFLOW_POLICY_DROP_OLDEST\x10\x02\x12\x1e\n" +
	"\x1aOVERFLOW_POLICY_DISCONNECT\x10\x03*\xb1\x02\n" +
	"\fGoAwayReason\x12\x1e\n" +
	"\x1aGO_AWAY_REASON_UNSPECIFIED\x10\x00\x12\x18\n" +
	"\x14GO_AWAY_REASON_DRAIN\x10\x01\x12\x1a\n" +
	"\x16GO_AWAY_REASON_MAX_AGE\x10\x02\x12\x1d\n" +
	"\x19GO_AWAY_REASON_TAKEN_OVER\x10\x03\x12 \n" +
	"\x1cGO_AWAY_REASON_SLOW_CONSUMER\x10\x04\x12\"\n" +
	"\x1eGO_AWAY_REASON_CLOSED_BY_ADMIN\x10\x05\x12!\n" +
	"\x1dGO_AWAY_REASON_PROTOCOL_ERROR\x10\x06\x12$\n" +
	" GO_AWAY_REASON_HEARTBEAT_TIMEOUT\x10\a\x12\x1d\n" +
	"\x19GO_AWAY_REASON_OVERLOADED\x10\bB3Z1github.com/tetherhq/tether/gen/tether/v1;tetherv1b\x06proto3"

var (
	file_tether_v1_frames_proto_rawDescOnce sync.Once
	file_tether_v1_frames_proto_rawDescData []byte
)

func file_tether_v1_frames_proto_rawDescGZIP() []byte {
	file_tether_v1_frames_proto_rawDescOnce.Do(func() {
		file_tether_v1_frames_proto_rawDescData = protoimpl.X.CompressGZIP(unsafe.Slice(unsafe.StringData(file_tether_v1_frames_proto_rawDesc), len(file_tether_v1_frames_proto_rawDesc)))
	})
	return file_tether_v1_frames_proto_rawDescData
}

var file_tether_v1_frames_proto_enumTypes = make([]protoimpl.EnumInfo, 3)
var file_tether_v1_frames_proto_msgTypes = make([]protoimpl.MessageInfo, 28)
var file_tether_v1_frames_proto_goTypes = []any{
	(ResumeStatus)(0),             // 0: tether.v1.ResumeStatus
	(OverflowPolicy)(0),           // 1: tether.v1.OverflowPolicy
	(GoAwayReason)(0),             // 2: tether.v1.GoAwayReason
	(*Hello)(nil),                 // 3: tether.v1.Hello
	(*ServerMessageBatch)(nil),    // 4: tether.v1.ServerMessageBatch
	(*ClientMessageBatch)(nil),    // 5: tether.v1.ClientMessageBatch
	(*ReceiveWindow)(nil),         // 6: tether.v1.ReceiveWindow
	(*Resume)(nil),                // 7: tether.v1.Resume
	(*Welcome)(nil),               // 8: tether.v1.Welcome
	(*Liveness)(nil),              // 9: tether.v1.Liveness
	(*RttTimeout)(nil),            // 10: tether.v1.RttTimeout
	(*SetHeartbeat)(nil),          // 11: tether.v1.SetHeartbeat
	(*Suspend)(nil),               // 12: tether.v1.Suspend
	(*TakeOver)(nil),              // 13: tether.v1.TakeOver
	(*SeqRange)(nil),              // 14: tether.v1.SeqRange
	(*Limits)(nil),                // 15: tether.v1.Limits
	(*Gap)(nil),                   // 16: tether.v1.Gap
	(*Ping)(nil),                  // 17: tether.v1.Ping
	(*Pong)(nil),                  // 18: tether.v1.Pong
	(*ClientMessage)(nil),         // 19: tether.v1.ClientMessage
	(*ServerMessage)(nil),         // 20: tether.v1.ServerMessage
	(*Source)(nil),                // 21: tether.v1.Source
	(*Ack)(nil),                   // 22: tether.v1.Ack
	(*Subscribe)(nil),             // 23: tether.v1.Subscribe
	(*Unsubscribe)(nil),           // 24: tether.v1.Unsubscribe
	(*Close)(nil),                 // 25: tether.v1.Close
	(*GoAway)(nil),                // 26: tether.v1.GoAway
	(*Error)(nil),                 // 27: tether.v1.Error
	nil,                           // 28: tether.v1.Hello.MetadataEntry
	nil,                           // 29: tether.v1.ClientMessage.HeadersEntry
	nil,                           // 30: tether.v1.ServerMessage.HeadersEntry
	(*durationpb.Duration)(nil),   // 31: google.protobuf.Duration
	(*timestamppb.Timestamp)(nil), // 32: google.protobuf.Timestamp
}
var file_tether_v1_frames_proto_depIdxs = []int32{
	31, // 0: tether.v1.Hello.heartbeat_interval:type_name -> google.protobuf.Duration
	7,  // 1: tether.v1.Hello.resume:type_name -> tether.v1.Resume
	28, // 2: tether.v1.Hello.metadata:type_name -> tether.v1.Hello.MetadataEntry
	6,  // 3: tether.v1.Hello.receive_window:type_name -> tether.v1.ReceiveWindow
	20, // 4: tether.v1.ServerMessageBatch.messages:type_name -> tether.v1.ServerMessage
	19, // 5: tether.v1.ClientMessageBatch.messages:type_name -> tether.v1.ClientMessage
	0,  // 6: tether.v1.Welcome.resume_status:type_name -> tether.v1.ResumeStatus
	14, // 7: tether.v1.Welcome.lost:type_name -> tether.v1.SeqRange
	31, // 8: tether.v1.Welcome.heartbeat_interval:type_name -> google.protobuf.Duration
	31, // 9: tether.v1.Welcome.keepalive_min_time:type_name -> google.protobuf.Duration
	31, // 10: tether.v1.Welcome.resume_window:type_name -> google.protobuf.Duration
	15, // 11: tether.v1.Welcome.limits:type_name -> tether.v1.Limits
	31, // 12: tether.v1.Welcome.dead_after:type_name -> google.protobuf.Duration
	6,  // 13: tether.v1.Welcome.receive_window:type_name -> tether.v1.ReceiveWindow
	13, // 14: tether.v1.Welcome.took_over:type_name -> tether.v1.TakeOver
	9,  // 15: tether.v1.Welcome.liveness:type_name -> tether.v1.Liveness
	31, // 16: tether.v1.Liveness.max_suspend_window:type_name -> google.protobuf.Duration
	10, // 17: tether.v1.Liveness.rtt_timeout:type_name -> tether.v1.RttTimeout
	31, // 18: tether.v1.RttTimeout.floor:type_name -> google.protobuf.Duration
	31, // 19: tether.v1.SetHeartbeat.interval:type_name -> google.protobuf.Duration
	31, // 20: tether.v1.Suspend.window:type_name -> google.protobuf.Duration
	14, // 21: tether.v1.TakeOver.dropped:type_name -> tether.v1.SeqRange
	31, // 22: tether.v1.Limits.min_heartbeat_interval:type_name -> google.protobuf.Duration
	31, // 23: tether.v1.Limits.max_heartbeat_interval:type_name -> google.protobuf.Duration
	1,  // 24: tether.v1.Limits.overflow_policy:type_name -> tether.v1.OverflowPolicy
	14, // 25: tether.v1.Gap.lost:type_name -> tether.v1.SeqRange
	32, // 26: tether.v1.Ping.sent_at:type_name -> google.protobuf.Timestamp
	31, // 27: tether.v1.Ping.rtt:type_name -> google.protobuf.Duration
	32, // 28: tether.v1.Pong.sent_at:type_name -> google.protobuf.Timestamp
	29, // 29: tether.v1.ClientMessage.headers:type_name -> tether.v1.ClientMessage.HeadersEntry
	30, // 30: tether.v1.ServerMessage.headers:type_name -> tether.v1.ServerMessage.HeadersEntry
	21, // 31: tether.v1.ServerMessage.source:type_name -> tether.v1.Source
	32, // 32: tether.v1.ServerMessage.published_at:type_name -> google.protobuf.Timestamp
	2,  // 33: tether.v1.GoAway.reason:type_name -> tether.v1.GoAwayReason
	31, // 34: tether.v1.GoAway.retry_after:type_name -> google.protobuf.Duration
	31, // 35: tether.v1.GoAway.retry_jitter:type_name -> google.protobuf.Duration
	36, // [36:36] is the sub-list for method output_type
	36, // [36:36] is the sub-list for method input_type
	36, // [36:36] is the sub-list for extension type_name
	36, // [36:36] is the sub-list for extension extendee
	0,  // [0:36] is the sub-list for field type_name
}

func init() { file_tether_v1_frames_proto_init() }
func file_tether_v1_frames_proto_init() {
	if File_tether_v1_frames_proto != nil {
		return
	}
	file_tether_v1_frames_proto_msgTypes[16].OneofWrappers = []any{
		(*ClientMessage_Topic)(nil),
		(*ClientMessage_SessionId)(nil),
		(*ClientMessage_ClientId)(nil),
	}
	type x struct{}
	out := protoimpl.TypeBuilder{
		File: protoimpl.DescBuilder{
			GoPackagePath: reflect.TypeOf(x{}).PkgPath(),
			RawDescriptor: unsafe.Slice(unsafe.StringData(file_tether_v1_frames_proto_rawDesc), len(file_tether_v1_frames_proto_rawDesc)),
			NumEnums:      3,
			NumMessages:   28,
			NumExtensions: 0,
			NumServices:   0,
		},
		GoTypes:           file_tether_v1_frames_proto_goTypes,
		DependencyIndexes: file_tether_v1_frames_proto_depIdxs,
		EnumInfos:         file_tether_v1_frames_proto_enumTypes,
		MessageInfos:      file_tether_v1_frames_proto_msgTypes,
	}.Build()
	File_tether_v1_frames_proto = out.File
	file_tether_v1_frames_proto_goTypes = nil
	file_tether_v1_frames_proto_depIdxs = nil
}
