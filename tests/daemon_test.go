package tests

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microfn/microfn/internal/attempts"
	"github.com/microfn/microfn/internal/kafka"
)

// daemon is a running `fnctl up`.
type daemon struct {
	t      *testing.T
	fnctl  string
	state  string
	server string
	cmd    *exec.Cmd
	exited chan struct{}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDaemon runs `fnctl up` on the test broker and waits until it serves.
func startDaemon(t *testing.T, fnctl, state, server, brokers string) *daemon {
	t.Helper()
	cmd := exec.Command(fnctl, "up", "--state", state, "--brokers", brokers, "--listen", server)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	d := &daemon{t: t, fnctl: fnctl, state: state, server: server, cmd: cmd, exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "API on") {
				once = true
				close(ready)
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(d.exited)
	}()
	select {
	case <-ready:
	case <-d.exited:
		t.Fatalf("fnctl up exited at start: %v", cmd.ProcessState)
	case <-time.After(settle):
		cmd.Process.Kill()
		t.Fatalf("fnctl up not serving within %v", settle)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-d.exited
	})
	return d
}

func (d *daemon) ctl(args ...string) string {
	d.t.Helper()
	r := run(d.t, settle, d.fnctl, []string{"FN_SERVER=" + d.server}, args...)
	if r.code != 0 {
		d.t.Fatalf("fnctl %v: exit %d\n%s", args, r.code, r.stderr)
	}
	return r.stdout + r.stderr
}

func (d *daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(settle):
		d.t.Fatalf("fnctl up did not exit within %v of %v", settle, sig)
	}
}

// kill -9 of the daemon with messages in flight: its function processes
// die with it; after a restart nothing is lost and at most the in-flight
// messages run again. Then SIGTERM under load: no message runs twice.
func TestDaemonKillAndTerm(t *testing.T) {
	r := newRig(t)
	fnctl := build(t, "cmd/fnctl")
	state := t.TempDir()
	server := freePort(t)
	d := startDaemon(t, fnctl, state, server, r.env.Brokers)
	pool := 4
	group := r.topic + "-group"
	d.ctl("deploy", r.bin, "--name", "killme", "--topic", r.topic, "--group", group, "--pool", fmt.Sprint(pool), "--env", "TESTFN_LOG="+r.logPath)

	n := 120
	r.publish("sleep=20ms", n, 12)
	r.waitFor(settle, "a third handled", func(rep *report) bool { return len(rep.finished) >= n/3 }, nil)
	d.signal(syscall.SIGKILL)
	var cut []int
	for _, inv := range analyse(readLogAll(t, r.logPath)).invs {
		if inv.end == 0 {
			cut = append(cut, inv.pid)
		}
	}
	waitGone(t, cut...) // the function processes died with the daemon
	// What the dead daemon had committed: nothing it covers may run again.
	atKill := map[int32]kafka.Commit{}
	killed := analyse(readLogAll(t, r.logPath))
	for _, inv := range killed.invs {
		if _, ok := atKill[inv.partition]; !ok {
			atKill[inv.partition] = committedMeta(t, mustBrokers(t, r.env), group, r.topic, inv.partition)
		}
	}

	d = startDaemon(t, fnctl, state, server, r.env.Brokers)
	if out := d.ctl("ls"); !strings.Contains(out, "killme") {
		t.Fatalf("deployment not restored after the restart:\n%s", out)
	}
	rep := r.waitFor(settle, "every message after the restart", r.allFinished, nil)
	// A message runs again after the kill only if the dead daemon had not
	// committed it: below the committed offset, or among the offsets it
	// recorded as finished above it, is done for good.
	dups := map[string]bool{}
	for _, id := range duplicates(rep) {
		dups[id] = true
	}
	for _, inv := range rep.invs {
		c, ok := atKill[inv.partition]
		if !dups[inv.id] || !ok || killed.pids[inv.pid] {
			continue // not a run after the restart
		}
		if inv.offset < c.Offset || attempts.Covers(attempts.DecodeDone(c.Metadata), inv.offset) {
			t.Errorf("%s (partition %d, offset %d) ran again although the killed daemon had committed it (offset %d, metadata %q)",
				inv.id, inv.partition, inv.offset, c.Offset, c.Metadata)
		}
	}
	t.Logf("%d messages ran again after kill -9 (%d were cut off in flight)", len(dups), len(cut))
	if len(rep.overlaps) > 0 {
		t.Errorf("run by two processes at once: %v", rep.overlaps)
	}
	before := len(rep.invs)

	r.publish("sleep=20ms", n, 12)
	r.waitFor(settle, "a third of the second batch", func(rep *report) bool { return len(rep.invs) >= before+n/3 }, nil)
	d.signal(syscall.SIGTERM)
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("fnctl up exit code %d after SIGTERM", code)
	}
	d = startDaemon(t, fnctl, state, server, r.env.Brokers)
	rep = r.waitFor(settle, "every message of the second batch", r.allFinished, nil)
	second := map[string]int{}
	for _, inv := range rep.invs[before:] {
		second[inv.id]++
	}
	for id, k := range second {
		if k > 1 {
			t.Errorf("%s ran %d times across a SIGTERM restart", id, k)
		}
	}
}

// fnctl replay sends dead letters back through the function, once.
func TestDaemonReplay(t *testing.T) {
	r := newRig(t)
	fnctl := build(t, "cmd/fnctl")
	d := startDaemon(t, fnctl, t.TempDir(), freePort(t), r.env.Brokers)
	d.ctl("deploy", r.bin, "--name", "replayme", "--topic", r.topic, "--attempts", "1", "--env", "TESTFN_LOG="+r.logPath)
	flag := filepath.Join(t.TempDir(), "broken")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.publish("fail-if="+flag, 3, 3)
	consumeAll(t, r.env.Brokers, r.topic+".dlq", 3, settle)

	os.Remove(flag) // the function is fixed
	if out := d.ctl("replay", "replayme", "--brokers", r.env.Brokers); !strings.Contains(out, "replayed 3 message(s)") {
		t.Fatalf("replay said %q", out)
	}
	rep := r.waitFor(settle, "every replayed message handled", func(rep *report) bool {
		for _, m := range r.sent {
			if rep.finished[m.id] < 2 {
				return false
			}
		}
		return true
	}, nil)
	for _, inv := range rep.invs {
		if inv.attempt != 1 {
			t.Errorf("%s on attempt %d: a replayed message starts its attempts afresh", inv.id, inv.attempt)
		}
	}
	if out := d.ctl("replay", "replayme", "--brokers", r.env.Brokers); !strings.Contains(out, "replayed 0 message(s)") {
		t.Fatalf("second replay said %q, want nothing replayed twice", out)
	}
	r2 := run(t, settle, fnctl, []string{"FN_SERVER=" + d.server}, "replay", "nosuch", "--brokers", r.env.Brokers)
	if r2.code != 3 || r2.stderr != "fnctl: no such deployment: \"nosuch\"\n" {
		t.Fatalf("replay of an unknown deployment: exit %d, %q", r2.code, r2.stderr)
	}
}

// fnctl deploy says when the subscribed topic does not exist, and not
// when it does.
func TestDaemonDeployWarnsOfMissingTopic(t *testing.T) {
	r := newRig(t)
	fnctl := build(t, "cmd/fnctl")
	d := startDaemon(t, fnctl, t.TempDir(), freePort(t), r.env.Brokers)
	missing := r.topic + "-missing"
	out := d.ctl("deploy", r.bin, "--name", "nosuchtopic", "--topic", missing, "--group", missing)
	if !strings.Contains(out, fmt.Sprintf("warning: topic %q does not exist", missing)) {
		t.Errorf("deploy on a missing topic said %q", out)
	}
	// A group of its own: the binary's default group is nosuchtopic's.
	if out := d.ctl("deploy", r.bin, "--name", "topicexists", "--topic", r.topic, "--group", r.topic); strings.Contains(out, "warning") {
		t.Errorf("deploy on an existing topic said %q", out)
	}
}
