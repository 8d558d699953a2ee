package client_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tetherhq/tether/client"
	"github.com/tetherhq/tether/internal/tethertest"
)

func TestPrometheusCollectors(t *testing.T) {
	t.Parallel()
	_, addr := tethertest.Serve(t)
	reg := prometheus.NewPedanticRegistry()
	s := newSession(t, client.WithAddrs(addr), client.WithClientID("m"), client.WithTopics("t"), client.WithRegisterer(reg))
	ctx := ctxT(t)
	if err := s.SendWait(ctx, client.Message{Topic: "t", Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"tether_client_messages_sent_total":     1,
		"tether_client_messages_received_total": 1,
		"tether_client_reconnects_total":        0,
	} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Fatalf("%s: %d series, %v", name, n, err)
		}
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == name {
				if got := mf.GetMetric()[0].GetCounter().GetValue(); got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
		}
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "tether_client_state" {
			continue
		}
		for _, m := range mf.GetMetric() {
			want := 0.0
			if m.GetLabel()[0].GetValue() == "connected" {
				want = 1
			}
			if m.GetGauge().GetValue() != want {
				t.Errorf("tether_client_state{%s} = %v", m.GetLabel()[0].GetValue(), m.GetGauge().GetValue())
			}
		}
	}
}
