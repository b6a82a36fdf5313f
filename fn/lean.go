//go:build microfn_lean

package fn

import (
	"context"
	"fmt"
	"io"
)

func init() {
	runStandalone = func(_ context.Context, f *Func, _ string, stderr io.Writer) int {
		fmt.Fprintf(stderr, "fn: subscriber %q: this binary was built with -tags microfn_lean for the restarter and cannot run standalone; deploy it with `fnctl deploy` or rebuild it without the tag\n", f.name)
		return ExitUsage
	}
}
