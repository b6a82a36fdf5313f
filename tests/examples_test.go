package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/microfn/microfn/internal/testenv"
)

// The README's quick start works as it says.
func TestQuickstartExample(t *testing.T) {
	testenv.EmbeddedPassOnly(t)
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

// fnctl invoke runs a function once, locally, as the restarter would.
func TestFnctlInvoke(t *testing.T) {
	testenv.EmbeddedPassOnly(t)
	fnctl := build(t, "cmd/fnctl")
	r := run(t, 2*time.Minute, fnctl, nil, "invoke", "../examples/greeter", `{"name":"ada"}`, "--key", "ada")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ack\nemit greetings key=ada {\"text\":\"hello, ada\"") {
		t.Fatalf("invoke: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, 2*time.Minute, fnctl, nil, "invoke", "../examples/greeter", `{"nom":1}`, "-o", "json")
	if r.code != 1 || !strings.Contains(r.stdout, `"outcome": "dead-letter"`) || !strings.Contains(r.stdout, `"failure": "permanent"`) {
		t.Fatalf("invoke of a bad message: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, 2*time.Minute, fnctl, nil, "invoke", "/bin/true", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "not a function built with microfn") {
		t.Fatalf("invoke of a non-function: exit %d, stderr %q", r.code, r.stderr)
	}
}
