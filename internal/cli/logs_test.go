package cli

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond (a file the engine appends to has no event to await)
// until it holds, for at most 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A plain executable deployed as echo.sh was named echo, so `fnctl logs
// echo.sh` failed; and logs needed a running daemon although the log is a
// file, which rm left behind. Now the deployment is named after its file,
// logs reads the file with or without a daemon, and rm removes it.
func TestPlainDeploymentIsNamedAfterItsFileAndItsLogOutlivesTheDaemon(t *testing.T) {
	clearEnv(t)
	d := startDaemon(t, "")
	echo := script(t, "echo.sh", "cat\necho\necho done >&2\n")
	if _, errOut, code := fnctl(t, "deploy", echo, "--plain", "--topic", "words", "--server", d.API); code != ExitOK ||
		!strings.HasPrefix(errOut, "deployed echo.sh: topic words, group echo.sh, pool 1") {
		t.Fatalf("deploy: exit %d %q", code, errOut)
	}
	if _, errOut, code := fnctl(t, "publish", "words", "hello", "--brokers", d.Brokers); code != ExitOK {
		t.Fatalf("publish: exit %d %q", code, errOut)
	}
	logs := func(args ...string) (string, int) {
		out, errOut, code := fnctl(t, append([]string{"logs", "echo.sh"}, args...)...)
		if code != ExitOK && errOut == "" {
			t.Errorf("logs %v: exit %d and nothing said", args, code)
		}
		return out, code
	}
	// Each line marked with its invocation and stream; the two streams
	// are read apart, so their lines may come in either order.
	stdout := regexp.MustCompile(`(?m)^\S+Z pid=\d+ words/\d+@0#1 stdout \| hello$`)
	stderr := regexp.MustCompile(`(?m)^\S+Z pid=\d+ words/\d+@0#1 stderr \| done$`)
	marked := func(out string) bool {
		return stdout.MatchString(out) && stderr.MatchString(out) && strings.Count(out, "\n") == 2
	}
	waitFor(t, "the function's output in the log", func() bool {
		out, code := logs("--state", d.StateDir)
		return code == ExitOK && marked(out)
	})
	if out, code := logs("--server", d.API); code != ExitOK || !marked(out) {
		t.Errorf("logs through the daemon: exit %d %q", code, out)
	}

	d.stop()
	if out, code := logs("--state", d.StateDir); code != ExitOK || !marked(out) {
		t.Errorf("logs with no daemon: exit %d %q", code, out)
	}
	t.Setenv("FN_STATE", d.StateDir)
	if out, code := logs("-n", "1"); code != ExitOK || strings.Count(out, "\n") != 1 || !stdout.MatchString(out) && !stderr.MatchString(out) {
		t.Errorf("logs -n 1 in $FN_STATE: exit %d %q", code, out)
	}

	again := startDaemon(t, d.StateDir)
	if _, errOut, code := fnctl(t, "rm", "echo.sh", "--server", again.API); code != ExitOK || errOut != "removed echo.sh\n" {
		t.Fatalf("rm: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(d.StateDir, "logs", "echo.sh.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rm left the log: %v", err)
	}
	if _, errOut, code := fnctl(t, "logs", "echo.sh"); code != ExitNotFound ||
		errOut != `fnctl: no such deployment: "echo.sh" in the state directory `+d.StateDir+"\n" {
		t.Errorf("logs after rm: exit %d %q", code, errOut)
	}
}
