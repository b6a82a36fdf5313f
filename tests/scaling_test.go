package tests

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/microfn/microfn/internal/testenv"
	"github.com/microfn/microfn/restarter"
)

// upStatus is a deployment's status as `fnctl ls -o json` gives it.
func upStatus(t *testing.T, u *upEmbedded, name string) restarter.Status {
	t.Helper()
	var sts []restarter.Status
	if err := json.Unmarshal([]byte(u.ctl("ls", "-o", "json")), &sts); err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no deployment %s in fnctl ls", name)
	return restarter.Status{}
}

// waitStatus polls the deployment's status until ok holds, failing with
// what after timeout.
func waitStatus(t *testing.T, u *upEmbedded, name, what string, timeout time.Duration, ok func(restarter.Status) bool) restarter.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := upStatus(t, u, name)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %+v", what, timeout, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A deployment with --min-pool 0 on `fnctl up` with its embedded broker
// keeps no process while idle, starts one for its first message (a cold
// start), grows under a burst up to --max-pool and no further, and
// returns to no process once quiet, handling every message once.
func TestDaemonPoolFollowsTheWork(t *testing.T) {
	fnctl := build(t, "cmd/fnctl")
	u := &upEmbedded{t: t, fnctl: fnctl, state: t.TempDir(), brokerAddr: freePort(t), apiAddr: freePort(t)}
	topic := "burst"
	r := &rig{t: t, env: &testenv.Env{Kind: "fnctl up", Brokers: u.brokerAddr}, bin: build(t, "tests/testfn"),
		topic: topic, logPath: filepath.Join(t.TempDir(), "log")}
	const maxPool = 4
	u.start()
	createTopic(t, u.brokerAddr, topic, 4)
	u.ctl("deploy", r.bin, "--name", "scaler", "--topic", topic, "--min-pool", "0", "--max-pool", fmt.Sprint(maxPool),
		"--scale-down-after", "300ms", "--env", "TESTFN_LOG="+r.logPath)
	daemonPid := u.proc.cmd.Process.Pid

	st := waitStatus(t, u, "scaler", "running", settle, func(s restarter.Status) bool { return s.State == "running" })
	if st.Pool != 0 || st.Warm != 0 || len(children(t, daemonPid)) != 0 {
		t.Fatalf("idle at --min-pool 0: pool %d, warm %d, %d function processes; want none", st.Pool, st.Warm, len(children(t, daemonPid)))
	}

	// The first message: a cold start.
	r.publish("ok", 1, 1)
	r.waitFor(settle, "the first message", r.allFinished, nil)
	if st := upStatus(t, u, "scaler"); st.ColdStarts < 1 {
		t.Errorf("cold starts %d after the first message to an empty pool, want at least 1", st.ColdStarts)
	}

	// A burst of messages that can all run at once (every key its own).
	r.publish("sleep=100ms", 40, 40)
	rep := r.waitFor(settle, "every message of the burst", r.allFinished, nil)
	if rep.maxConc < 2 || rep.maxConc > maxPool {
		t.Errorf("at most %d messages ran at once in the burst; want the pool to grow, to at most %d", rep.maxConc, maxPool)
	}
	if dups := duplicates(rep); len(dups) > 0 {
		t.Errorf("messages ran twice: %v", dups)
	}
	if len(rep.overlaps) > 0 {
		t.Errorf("run by two processes at once: %v", rep.overlaps)
	}

	// Quiet again: back to no process, everything committed.
	st = waitStatus(t, u, "scaler", "back to 0 warm processes, everything committed", settle, func(s restarter.Status) bool {
		return s.Pool == 0 && s.Warm == 0 && s.InFlight == 0 && s.Lag == 0 && s.Processed == int64(len(r.sent))
	})
	if pids := children(t, daemonPid); len(pids) != 0 {
		waitGone(t, pids...) // a process told to stop exits on its own
	}
	t.Logf("%s; pool %s", rep, st.Scaled)
}
