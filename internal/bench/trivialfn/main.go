// Command trivialfn is the function microfn's benchmarks run: it
// acknowledges every message and does nothing else, so what is measured
// is microfn, not the handler.
package main

import (
	"context"

	"github.com/microfn/microfn/fn"
)

func main() {
	fn.Subscribe("trivial", "bench", func(context.Context, []byte) error { return nil })
	fn.Main()
}
