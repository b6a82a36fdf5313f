// Command plain is a function that acknowledges every message, built
// without fn/secure: the baseline of BenchmarkStartCost.
package main

import (
	"context"

	"github.com/microfn/microfn/fn"
)

func main() {
	fn.Subscribe("trivial", "trivial", func(context.Context, []byte) error { return nil })
	fn.Main()
}
