package server

import (
	"slices"
	"testing"
)

// The hub's indexes keep a lone session without a map, and behave as a
// set through growth and shrinking.
func TestSessionSetIndex(t *testing.T) {
	t.Parallel()
	a, b, c := &Session{id: "a"}, &Session{id: "b"}, &Session{id: "c"}
	m := map[string]sessionSet{}
	members := func() []string {
		var ids []string
		for _, s := range collect(m["k"]) {
			ids = append(ids, s.id)
		}
		slices.Sort(ids)
		return ids
	}
	steps := []struct {
		add  bool
		s    *Session
		want []string
	}{
		{true, a, []string{"a"}},
		{true, a, []string{"a"}},
		{true, b, []string{"a", "b"}},
		{true, c, []string{"a", "b", "c"}},
		{false, b, []string{"a", "c"}},
		{false, b, []string{"a", "c"}},
		{false, a, []string{"c"}},
		{false, c, nil},
		{true, b, []string{"b"}},
		{false, a, []string{"b"}},
		{false, b, nil},
	}
	for i, st := range steps {
		if st.add {
			addTo(m, "k", st.s)
		} else {
			removeFrom(m, "k", st.s)
		}
		if got := members(); !slices.Equal(got, st.want) {
			t.Fatalf("step %d: members %v, want %v", i, got, st.want)
		}
		if _, ok := m["k"]; ok != (len(st.want) > 0) {
			t.Fatalf("step %d: key present %v with %d members", i, ok, len(st.want))
		}
	}
	if m["k"].many != nil || len(m) != 0 {
		t.Fatalf("index not empty at the end: %v", m)
	}
	addTo(m, "k", a)
	if set := m["k"]; set.one != a || set.many != nil {
		t.Fatalf("a lone member got a map: %+v", set)
	}
}
