package brokertest

import (
	"slices"
	"strconv"
	"testing"

	"github.com/tetherhq/tether/broker"
)

var logTests = []test{
	{"AppendRead", testLogAppendRead},
	{"ReadFromGap", testLogReadFromGap},
	{"DropOldest", testLogDropOldest},
	{"SeqOrder", testLogSeqOrder},
	{"Capacity", testLogCapacity},
	{"Trim", testLogTrim},
	{"Delete", testLogDelete},
	{"Sessions", testLogSessions},
	{"Long", testLogLong},
	{"ReadReentrant", testLogReadReentrant},
}

// entry returns the entry of seq, with a message whose payload is the seq.
func entry(seq uint64) broker.Entry {
	return broker.Entry{Seq: seq, Message: &broker.Message{
		Target:  broker.Session("s"),
		Payload: strconv.AppendUint(nil, seq, 10),
	}}
}

// appendSeq appends entry(seq) and fails t unless it reports want.
func appendSeq(t *testing.T, l broker.Log, seq uint64, capacity int, want broker.Appended) {
	t.Helper()
	got, err := l.Append(t.Context(), entry(seq), capacity)
	if err != nil {
		t.Fatalf("Append(seq %d, capacity %d): %v", seq, capacity, err)
	}
	if got != want {
		t.Errorf("Append(seq %d, capacity %d) = %+v, want %+v", seq, capacity, got, want)
	}
}

// readSeqs reads l from seq from to the end and returns the seqs it saw,
// failing t if an entry's message is not the one appended with it.
func readSeqs(t *testing.T, l broker.Log, from uint64) []uint64 {
	t.Helper()
	var seqs []uint64
	err := l.Read(t.Context(), from, func(e broker.Entry) bool {
		seqs = append(seqs, e.Seq)
		if e.Message == nil || string(e.Message.Payload) != strconv.FormatUint(e.Seq, 10) {
			t.Errorf("entry of seq %d holds message %+v", e.Seq, e.Message)
		}
		return true
	})
	if err != nil {
		t.Fatalf("Read(from %d): %v", from, err)
	}
	return seqs
}

// wantSeqs fails t unless l holds exactly the entries of want.
func wantSeqs(t *testing.T, l broker.Log, want ...uint64) {
	t.Helper()
	if got := readSeqs(t, l, 0); !slices.Equal(got, want) {
		t.Errorf("log holds seqs %v, want %v", got, want)
	}
}

func trim(t *testing.T, l broker.Log, upTo uint64) {
	t.Helper()
	if err := l.Trim(t.Context(), upTo); err != nil {
		t.Fatalf("Trim(%d): %v", upTo, err)
	}
}

// seqRange returns the seqs from lo to hi, inclusive.
func seqRange(lo, hi uint64) []uint64 {
	var seqs []uint64
	for seq := lo; seq <= hi; seq++ {
		seqs = append(seqs, seq)
	}
	return seqs
}

func testLogAppendRead(t *testing.T, s suite) {
	b, _ := s.start(t)
	l := b.Log("s")
	wantSeqs(t, l)
	for seq := uint64(1); seq <= 5; seq++ {
		appendSeq(t, l, seq, 10, broker.Appended{Len: int(seq)})
	}
	wantSeqs(t, l, 1, 2, 3, 4, 5)
	if got := readSeqs(t, l, 3); !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Errorf("Read from 3 saw seqs %v, want [3 4 5]", got)
	}
	if got := readSeqs(t, l, 6); len(got) != 0 {
		t.Errorf("Read from 6 saw seqs %v, want none", got)
	}
	var got []uint64
	err := l.Read(t.Context(), 0, func(e broker.Entry) bool {
		got = append(got, e.Seq)
		return len(got) < 2
	})
	if err != nil || !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("Read stopping after two entries saw seqs %v and returned %v, want [1 2] and nil", got, err)
	}
}

func testLogReadFromGap(t *testing.T, s suite) {
	b, _ := s.start(t)
	l := b.Log("s")
	for i, seq := range []uint64{10, 20, 30} {
		appendSeq(t, l, seq, 10, broker.Appended{Len: i + 1})
	}
	if got := readSeqs(t, l, 15); !slices.Equal(got, []uint64{20, 30}) {
		t.Errorf("Read from 15 saw seqs %v, want [20 30]", got)
	}
}

func testLogDropOldest(t *testing.T, s suite) {
	b, _ := s.start(t)
	l := b.Log("s")
	want := []broker.Appended{{Len: 1}, {Len: 2}, {Len: 3}, {Dropped: 1, Len: 3}, {Dropped: 1, Len: 3}}
	for i, w := range want {
		appendSeq(t, l, uint64(i+1), 3, w)
	}
	wantSeqs(t, l, 3, 4, 5)
	appendSeq(t, l, 6, 1, broker.Appended{Dropped: 3, Len: 1})
	wantSeqs(t, l, 6)
}

func testLogSeqOrder(t *testing.T, s suite) {
	b, _ := s.start(t)
	l := b.Log("s")
	appendSeq(t, l, 5, 10, broker.Appended{Len: 1})
	for _, seq := range []uint64{5, 3} {
		if got, err := l.Append(t.Context(), entry(seq), 10); err == nil {
			t.Errorf("Append(seq %d) after seq 5 = %+v, nil; want an error", seq, got)
		}
	}
	wantSeqs(t, l, 5)
	appendSeq(t, l, 6, 10, broker.Appended{Len: 2})
}

func testLogCapacity(t *testing.T, s suite) {
	b, _ := s.start(t)
	l := b.Log("s")
	for _, capacity := range []int{0, -1} {
		if got, err := l.Append(t.Context(), entry(1), capacity); err == nil {
			t.Errorf("Append with capacity %d = %+v, nil; want an error", capacity, got)
		}
	}
	wantSeqs(t, l)
}

func testLogTrim(t *testing.T, s suite) {
	b, _ := s.start(t)
	trim(t, b.Log("unknown"), 10)
	l := b.Log("s")
	for seq := uint64(1); seq <= 5; seq++ {
		appendSeq(t, l, seq, 10, broker.Appended{Len: int(seq)})
	}
	trim(t, l, 0)
	wantSeqs(t, l, 1, 2, 3, 4, 5)
	trim(t, l, 2)
	wantSeqs(t, l, 3, 4, 5)
	trim(t, l, 2)
	wantSeqs(t, l, 3, 4, 5)
	trim(t, l, 4)
	wantSeqs(t, l, 5)
	appendSeq(t, l, 6, 10, broker.Appended{Len: 2})
	trim(t, l, 100)
	wantSeqs(t, l)
	appendSeq(t, l, 101, 10, broker.Appended{Len: 1})
	wantSeqs(t, l, 101)
}

func testLogDelete(t *testing.T, s suite) {
	b, _ := s.start(t)
	if err := b.Log("unknown").Delete(t.Context()); err != nil {
		t.Errorf("Delete of an unknown log: %v", err)
	}
	l, other := b.Log("s"), b.Log("s")
	for seq := uint64(1); seq <= 3; seq++ {
		appendSeq(t, l, seq, 10, broker.Appended{Len: int(seq)})
	}
	if err := other.Delete(t.Context()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantSeqs(t, l)
	appendSeq(t, other, 1, 10, broker.Appended{Len: 1})
	wantSeqs(t, l, 1)
	appendSeq(t, l, 2, 10, broker.Appended{Len: 2})
	wantSeqs(t, other, 1, 2)
}

func testLogSessions(t *testing.T, s suite) {
	b, _ := s.start(t)
	a, c := b.Log("a"), b.Log("c")
	appendSeq(t, a, 1, 10, broker.Appended{Len: 1})
	appendSeq(t, c, 7, 10, broker.Appended{Len: 1})
	appendSeq(t, b.Log("a"), 2, 10, broker.Appended{Len: 2})
	wantSeqs(t, a, 1, 2)
	wantSeqs(t, c, 7)
	trim(t, a, 10)
	wantSeqs(t, c, 7)
	if err := c.Delete(t.Context()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	appendSeq(t, a, 11, 10, broker.Appended{Len: 1})
	wantSeqs(t, b.Log("a"), 11)
}

// testLogLong runs a log through more entries than any read buffer or ring
// an implementation is likely to start with.
func testLogLong(t *testing.T, s suite) {
	b, _ := s.start(t)
	l := b.Log("s")
	const capacity = 300
	dropped := 0
	for seq := uint64(1); seq <= 1000; seq++ {
		a, err := l.Append(t.Context(), entry(seq), capacity)
		if err != nil {
			t.Fatalf("Append(seq %d): %v", seq, err)
		}
		if want := min(int(seq), capacity); a.Len != want {
			t.Fatalf("Append(seq %d) left Len %d, want %d", seq, a.Len, want)
		}
		dropped += a.Dropped
	}
	if dropped != 1000-capacity {
		t.Errorf("Append dropped %d entries in all, want %d", dropped, 1000-capacity)
	}
	wantSeqs(t, l, seqRange(701, 1000)...)
	var n int
	if err := l.Read(t.Context(), 0, func(broker.Entry) bool { n++; return n < 150 }); err != nil || n != 150 {
		t.Errorf("Read stopping at the 150th entry called fn %d times and returned %v", n, err)
	}
	trim(t, l, 900)
	wantSeqs(t, l, seqRange(901, 1000)...)
	trim(t, l, 1000)
	wantSeqs(t, l)
	appendSeq(t, l, 1001, capacity, broker.Appended{Len: 1})
}

// testLogReadReentrant checks that Read's fn may use the log.
func testLogReadReentrant(t *testing.T, s suite) {
	b, _ := s.start(t)
	l := b.Log("s")
	for seq := uint64(1); seq <= 3; seq++ {
		appendSeq(t, l, seq, 10, broker.Appended{Len: int(seq)})
	}
	within(t, "Read with an fn that uses the log", func() {
		err := l.Read(t.Context(), 0, func(e broker.Entry) bool {
			if e.Seq != 1 {
				return true
			}
			if _, err := l.Append(t.Context(), entry(4), 10); err != nil {
				t.Errorf("Append from Read: %v", err)
			}
			if err := l.Trim(t.Context(), 1); err != nil {
				t.Errorf("Trim from Read: %v", err)
			}
			return true
		})
		if err != nil {
			t.Errorf("Read: %v", err)
		}
	})
	wantSeqs(t, l, 2, 3, 4)
}
