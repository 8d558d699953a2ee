package backoff_test

import (
	"fmt"
	"time"

	"github.com/tetherhq/tether/backoff"
)

func ExampleConfig() {
	// Start from the defaults and change what you need.
	cfg := backoff.DefaultConfig()
	cfg.Cap = 10 * time.Second
	if err := cfg.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("base %v, cap %v, multiplier %v, reset after %v\n",
		cfg.Base, cfg.Cap, cfg.Multiplier, cfg.ResetAfter)

	// Validate says what to change.
	cfg.Multiplier = 0.5
	fmt.Println(cfg.Validate())
	// Output:
	// base 1s, cap 10s, multiplier 2, reset after 5s
	// backoff: Multiplier is 0.5; set it to 1 or more (1 keeps the delay ceiling at Base)
}
