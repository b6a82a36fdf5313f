package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	// The output the README shows is what it prints, but for the port,
	// the pids and the order of the greetings.
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	shown := regexp.MustCompile("(?s)```\n(embedded broker on .*?)```").FindStringSubmatch(string(b))
	if shown == nil {
		t.Fatal("the README shows no output of the quick start")
	}
	if got, want := normalize(r.stdout), normalize(shown[1]); !slices.Equal(got, want) {
		t.Errorf("quickstart printed\n%s\nthe README shows\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// normalize makes quick start output comparable: no port or pid, lines
// sorted.
func normalize(out string) []string {
	out = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(out, "127.0.0.1:PORT")
	out = regexp.MustCompile(`"pid":\d+`).ReplaceAllString(out, `"pid":PID`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(lines)
	return lines
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
	if r.code != 2 || !strings.Contains(r.stderr, "not a function built with microfn") {
		t.Fatalf("invoke of a non-function: exit %d, stderr %q", r.code, r.stderr)
	}
	r = run(t, 2*time.Minute, fnctl, nil, "invoke", "--plain", "/bin/false", "x")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "retry (exit: ") {
		t.Fatalf("invoke --plain of a failing executable: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
}

// fnctl invoke holds a function to its declared timeout and attempts, as
// the restarter does: it kills the handler at the deadline, and a failed
// last attempt is dead-lettered, not retried.
func TestFnctlInvokeHonoursTimeoutAndAttempts(t *testing.T) {
	fnctl, bin := build(t, "cmd/fnctl"), build(t, "tests/testfn")
	logPath := filepath.Join(t.TempDir(), "log")
	env := []string{"TESTFN_LOG=" + logPath, "TESTFN_TIMEOUT=1s"}
	r := run(t, 2*time.Minute, fnctl, env, "invoke", bin, "sleep=20s")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "retry (timeout: timed out after ") {
		t.Fatalf("a handler over its declared 1s timeout: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	if recs := readLogAll(t, logPath); len(recs) != 1 || recs[0].Phase != "start" {
		t.Fatalf("the handler was not stopped at its deadline: log %+v", recs)
	}
	r = run(t, 2*time.Minute, fnctl, env, "invoke", bin, "fail", "--attempt", "3")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "dead-letter (error: told to fail)") {
		t.Fatalf("the last of 3 declared attempts failing: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, 2*time.Minute, fnctl, env, "invoke", bin, "fail", "--attempt", "2")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "retry (error: told to fail)") {
		t.Fatalf("attempt 2 of 3 failing: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
}
