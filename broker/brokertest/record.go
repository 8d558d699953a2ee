package brokertest

import (
	"bytes"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/tetherhq/tether/broker"
)

var recordTests = []test{
	{"RoundTrip", testRecordRoundTrip},
	{"Replace", testRecordReplace},
	{"Delete", testRecordDelete},
	{"Copies", testRecordCopies},
}

// expires is the Expires time of record: a week from when the tests
// started, with nanoseconds, the same for every record. A broker may
// forget a record once its Expires has passed, so it must not be a fixed
// date.
var expires = time.Now().Add(7 * 24 * time.Hour).UTC().Truncate(time.Second).Add(6)

// record returns a record of session id with every field set, each from
// version.
func record(id, version string) broker.SessionRecord {
	return broker.SessionRecord{
		ID:          id,
		ClientID:    "client-" + version,
		Principal:   "principal-" + version,
		TokenHash:   []byte("hash-" + version),
		Node:        "node-" + version,
		Topics:      []string{"topic-" + version, "other-" + version},
		Closed:      version == "closed",
		Expires:     expires,
		Metadata:    map[string]string{"version": version, "empty": ""},
		Created:     time.Date(2025, 12, 31, 23, 59, 58, 123456789, time.UTC),
		Interval:    15*time.Second + time.Duration(len(version))*time.Millisecond,
		SentSeq:     1<<40 + uint64(len(version)),
		AckedSeq:    1<<40 - 3,
		ReceivedSeq: 7,
	}
}

// equalRecord reports whether a and b hold the same record. Nil and empty
// slices and maps are equal, and so are times at the same instant.
func equalRecord(a, b broker.SessionRecord) bool {
	return a.ID == b.ID &&
		a.ClientID == b.ClientID &&
		a.Principal == b.Principal &&
		bytes.Equal(a.TokenHash, b.TokenHash) &&
		a.Node == b.Node &&
		slices.Equal(a.Topics, b.Topics) &&
		a.Closed == b.Closed &&
		a.Expires.Equal(b.Expires) &&
		maps.Equal(a.Metadata, b.Metadata) &&
		a.Created.Equal(b.Created) &&
		a.Interval == b.Interval &&
		a.SentSeq == b.SentSeq &&
		a.AckedSeq == b.AckedSeq &&
		a.ReceivedSeq == b.ReceivedSeq
}

func put(t *testing.T, b broker.Broker, rec broker.SessionRecord) {
	t.Helper()
	if err := b.PutSession(t.Context(), rec); err != nil {
		t.Fatalf("PutSession(%q): %v", rec.ID, err)
	}
}

// get fails t unless session id's record is want, or unknown if want is
// nil, and returns what it read.
func get(t *testing.T, b broker.Broker, id string, want *broker.SessionRecord) broker.SessionRecord {
	t.Helper()
	got, ok, err := b.GetSession(t.Context(), id)
	switch {
	case err != nil:
		t.Fatalf("GetSession(%q): %v", id, err)
	case want == nil && ok:
		t.Errorf("GetSession(%q) = %+v, want none", id, got)
	case want != nil && !ok:
		t.Errorf("GetSession(%q) found none, want %+v", id, *want)
	case want != nil && !equalRecord(got, *want):
		t.Errorf("GetSession(%q) = %+v, want %+v", id, got, *want)
	}
	return got
}

func deleteSession(t *testing.T, b broker.Broker, id string) {
	t.Helper()
	if err := b.DeleteSession(t.Context(), id); err != nil {
		t.Fatalf("DeleteSession(%q): %v", id, err)
	}
}

func testRecordRoundTrip(t *testing.T, s suite) {
	b, _ := s.start(t)
	got := get(t, b, "unknown", nil)
	if !equalRecord(got, broker.SessionRecord{}) {
		t.Errorf("GetSession of an unknown id returned %+v, want the zero record", got)
	}
	// A record as a server puts it: times read from the clock (with a
	// monotonic reading and a location), Expires zero while attached.
	now := time.Now()
	live := broker.SessionRecord{
		ID:       "live",
		ClientID: "c",
		Created:  now,
		Interval: 30 * time.Second,
		Metadata: map[string]string{"device": "phone"},
	}
	detached := record("detached", "2")
	detached.Expires = now.Add(time.Hour)
	for _, rec := range []broker.SessionRecord{record("a", "1"), record("b", "closed"), {ID: "bare"}, live, detached} {
		put(t, b, rec)
		get(t, b, rec.ID, &rec)
	}
}

func testRecordReplace(t *testing.T, s suite) {
	b, _ := s.start(t)
	put(t, b, record("a", "1"))
	v2 := record("a", "2")
	v2.Topics = nil
	v2.Metadata = nil
	v2.Created = time.Time{}
	v2.AckedSeq = 0
	put(t, b, v2)
	get(t, b, "a", &v2)
}

func testRecordDelete(t *testing.T, s suite) {
	b, _ := s.start(t)
	deleteSession(t, b, "unknown")
	a, c := record("a", "1"), record("c", "1")
	put(t, b, a)
	put(t, b, c)
	deleteSession(t, b, "a")
	get(t, b, "a", nil)
	get(t, b, "c", &c)
	deleteSession(t, b, "a")
	put(t, b, a)
	get(t, b, "a", &a)
}

// testRecordCopies checks that callers' slices and maps and the stored ones
// are independent.
func testRecordCopies(t *testing.T, s suite) {
	b, _ := s.start(t)
	want := record("a", "1")
	rec := record("a", "1")
	put(t, b, rec)
	rec.TokenHash[0] = 'X'
	rec.Topics[0] = "changed after PutSession"
	rec.Metadata["version"] = "changed after PutSession"
	rec.Metadata["added"] = "after PutSession"
	got := get(t, b, "a", &want)
	if len(got.TokenHash) == 0 || len(got.Topics) == 0 || got.Metadata == nil {
		t.Fatalf("GetSession returned empty slices or maps: %+v", got)
	}
	got.TokenHash[0] = 'Y'
	got.Topics[0] = "changed after GetSession"
	got.Metadata["version"] = "changed after GetSession"
	got.Metadata["added"] = "after GetSession"
	get(t, b, "a", &want)
}
