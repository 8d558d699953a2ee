package system

import (
	"context"
	"encoding/binary"
	"sync"
	"time"
)

// The fan-out scenario's messages, beside the App's own kinds and the
// extended scenarios' (ext.go).
const (
	// KindSubscribe "U<topic>" subscribes the sending session to topic in
	// the App's own topic table: what a system without topics (raw) uses,
	// so that its server fans out to the subscribed streams itself.
	KindSubscribe byte = 'U'
	// KindFanout asks the server to publish one message to a topic
	// (FanoutRequest).
	KindFanout byte = 'F'
	// KindFanned marks a message published to a topic: its sequence
	// number and the server's publish time (Fanned).
	KindFanned byte = 'f'
)

// fannedHeader is kind, seq (4 bytes) and publish time (8 bytes).
const fannedHeader = 13

// Subscriber is a Client that can subscribe to a topic. Subscribe returns
// once the server has the subscription: a publish after it reaches this
// client.
type Subscriber interface {
	Subscribe(ctx context.Context, topic string) error
}

// TopicPublisher is a Server with topics of its own: PublishTopic hands
// payload to the system's publish path (tether: Server.Publish to a
// topic; Centrifuge: Node.Publish to a channel). A server that is not a
// TopicPublisher gets the App's own fan-out: the App sends payload to
// every session that sent KindSubscribe for topic, one Send per session.
type TopicPublisher interface {
	PublishTopic(topic string, payload []byte) error
}

// FanoutRequest encodes a KindFanout payload: publish message seq, size
// bytes (at least the 13-byte header), to topic.
func FanoutRequest(topic string, seq uint32, size int) []byte {
	b := make([]byte, 9+len(topic))
	b[0] = KindFanout
	binary.BigEndian.PutUint32(b[1:], seq)
	binary.BigEndian.PutUint32(b[5:], uint32(size))
	copy(b[9:], topic)
	return b
}

// Fanned decodes a KindFanned payload: its sequence number and when the
// server published it. ok is false for any other payload.
func Fanned(b []byte) (seq uint32, published time.Time, ok bool) {
	if len(b) < fannedHeader || b[0] != KindFanned {
		return 0, time.Time{}, false
	}
	return binary.BigEndian.Uint32(b[1:]), time.Unix(0, int64(binary.BigEndian.Uint64(b[5:]))), true
}

// topics is one App's fan-out state.
type topics struct {
	mu   sync.RWMutex
	pub  TopicPublisher
	subs map[string][]Conn // the App's own table (no TopicPublisher)
}

var appTopics sync.Map // *App → *topics

func (a *App) topics() *topics {
	if t, ok := appTopics.Load(a); ok {
		return t.(*topics)
	}
	t, _ := appTopics.LoadOrStore(a, &topics{subs: map[string][]Conn{}})
	return t.(*topics)
}

// SetTopicPublisher makes the App publish KindFanout messages through
// pub instead of its own topic table.
func (a *App) SetTopicPublisher(pub TopicPublisher) {
	t := a.topics()
	t.mu.Lock()
	t.pub = pub
	t.mu.Unlock()
}

// onOther handles the fan-out kinds; the App ignores every other kind it
// does not know.
func (p *Peer) onOther(b []byte) {
	switch b[0] {
	case KindSubscribe:
		t := p.app.topics()
		t.mu.Lock()
		t.subs[string(b[1:])] = append(t.subs[string(b[1:])], p.conn)
		t.mu.Unlock()
	case KindFanout:
		if len(b) < 9 {
			return
		}
		seq := binary.BigEndian.Uint32(b[1:])
		size := max(int(binary.BigEndian.Uint32(b[5:])), fannedHeader)
		topic := string(b[9:])
		msg := Payload(KindFanned, size)
		binary.BigEndian.PutUint32(msg[1:], seq)
		t := p.app.topics()
		t.mu.RLock()
		pub, subs := t.pub, t.subs[topic]
		t.mu.RUnlock()
		binary.BigEndian.PutUint64(msg[5:], uint64(time.Now().UnixNano()))
		if pub != nil {
			_ = pub.PublishTopic(topic, msg)
			return
		}
		for _, c := range subs {
			_ = c.Send(msg)
		}
	}
}
