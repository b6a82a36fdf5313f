package tests

import (
	"strings"
	"testing"
	"time"
)

// The README's quick start works as it says.
func TestQuickstartExample(t *testing.T) {
	bin := build(t, "examples/quickstart")
	r := run(t, 2*time.Minute, bin, nil)
	if r.code != 0 {
		t.Fatalf("quickstart: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		`greetings: {"text":"hello, ada"`,
		`greetings: {"text":"hello, grace"`,
		`names.dlq: {"nom":"oops"} (reason permanent: no "name" in the message)`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("quickstart output lacks %q:\n%s", want, r.stdout)
		}
	}
}
