// Command secure is testdata/plain with fn/secure linked in.
package main

import (
	"context"

	"github.com/microfn/microfn/fn"
	_ "github.com/microfn/microfn/fn/secure"
)

func main() {
	fn.Subscribe("trivial", "trivial", func(context.Context, []byte) error { return nil })
	fn.Main()
}
