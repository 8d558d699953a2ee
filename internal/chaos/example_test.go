package chaos_test

import (
	"fmt"
	"os"

	"github.com/tetherhq/tether/internal/chaos"
)

// A result that broke the NATS promise: three client messages lost.
func ExampleMarkdown() {
	r := chaos.Result{
		Case: "kill-receiver-send/nats", Fault: "kill -9 of the receiver's node, Send", Broker: "nats", Settled: true,
		S2C:        chaos.Count{Sent: 320},
		C2S:        chaos.Count{Sent: 320, Lost: 3, Unreported: 3},
		Reconnects: 5, ReconnectP50: 0.5, ReconnectMax: 1.25,
	}
	chaos.Markdown(os.Stdout, []chaos.Result{r})
	fmt.Println(r.Violations())
	// Output:
	// | fault | broker | s→c sent | s→c lost (unreported) | s→c dup | s→c reordered | c→s sent | c→s lost (unreported) | c→s dup | c→s reordered | reconnects | reconnect p50 / max | promise |
	// | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |
	// | kill -9 of the receiver's node, Send | nats | 320 | 0 | 0 | 0 | 320 | **3** (3) | 0 | 0 | 5 | 0.5 s / 1.2 s | 0 lost, duplicated, reordered: **broken** |
	// [client→server: of 320 sent, 3 lost (3 reported to nobody), 0 duplicated, 0 reordered]
}
