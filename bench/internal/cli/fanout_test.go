package cli

import "testing"

func TestFanoutSmoke(t *testing.T) {
	t.Parallel()
	// 1 subscriber count × 3 systems.
	smoke(t, 3, []string{"msgs_per_s"}, []string{ratioCol, "| centrifuge ÷ raw |", "| tether ÷ centrifuge |"},
		"fanout", "--systems", "tether,raw,centrifuge", "--subscribers", "20", "--deliveries", "400", "--warmup-deliveries", "40")
}

func TestCentrifugePushSmoke(t *testing.T) {
	t.Parallel()
	// Centrifuge alone (tether and raw have their own smoke tests; the
	// tether ÷ centrifuge column is checked by the fan-out smoke and the
	// report's tests): 2 directions.
	smoke(t, 2, []string{"msgs_per_s"}, []string{"| centrifuge |"}, "push", "--systems", "centrifuge", "--sessions", "1", "--sizes", "64", "--duration", "150ms", "--warmup", "50ms")
}

func TestCentrifugeLatencySmoke(t *testing.T) {
	t.Parallel()
	// Centrifuge alone: unpinned round trip and heartbeat.
	smoke(t, 2, []string{"p50_us"}, []string{"| centrifuge |"}, "latency", "--systems", "centrifuge", "--pin", "off", "--count", "200", "--warmup-count", "20", "--hb-sessions", "2", "--hb-duration", "1500ms")
}
