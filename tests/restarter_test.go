package tests

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/restarter"
)

const settle = 2 * time.Minute

// N messages, N processes: nothing lost or duplicated, no message run
// twice at once, key order held, and more messages in flight than the
// topic has partitions.
func TestRestarterCleanRun(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	n := 240
	if testing.Short() {
		n = 80
	}
	r.deploy(e, r.spec(8))
	waitWarm(t, e, 8)
	r.publish("sleep=50ms", n, 24)
	rep := r.waitFor(settle, "all messages handled", r.allFinished, statusOf(e))
	if d := duplicates(rep); len(d) > 0 {
		t.Errorf("duplicates: %v", d)
	}
	if len(rep.overlaps) > 0 || len(rep.outOfOrder) > 0 {
		t.Errorf("overlaps %v, out of key order %v", rep.overlaps, rep.outOfOrder)
	}
	if len(rep.pids) != n || len(rep.invs) != n {
		t.Errorf("%d invocations in %d processes for %d messages, want one process each", len(rep.invs), len(rep.pids), n)
	}
	if rep.maxConc <= rigPartitions {
		t.Errorf("at most %d messages ran at once with a pool of 8 on %d partitions", rep.maxConc, rigPartitions)
	}
	t.Logf("%s", rep)
}

// Handler errors and panics are retried, then dead-lettered with their
// cause; other keys are not held up, and the poison's own key resumes.
func TestRestarterRetriesThenDeadLetters(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	produce(t, r.env.Brokers, r.topic,
		record{key: []byte("poison-a"), value: []byte("fail id-fail")},
		record{key: []byte("poison-b"), value: []byte("panic id-panic")},
		record{key: []byte("poison-a"), value: []byte("ok id-after")})
	r.sent = append(r.sent, sentMsg{id: "id-fail"}, sentMsg{id: "id-panic"}, sentMsg{id: "id-after"})
	r.publish("ok", 30, 10)
	r.deploy(e, r.spec(4))
	rep := r.waitFor(settle, "every message handled", r.allFinished, statusOf(e))
	dls := consumeAll(t, r.env.Brokers, r.topic+delivery.DeadLetterSuffix, 2, settle)
	got := map[string]string{}
	for _, m := range dls {
		got[strings.Fields(string(m.Value))[1]] = fmt.Sprintf("%s/%s/%s", header(m, delivery.HeaderReason), header(m, delivery.HeaderFailure), header(m, delivery.HeaderAttempts))
		if strings.HasPrefix(string(m.Value), "panic") && !strings.Contains(header(m, delivery.HeaderStderr), "told to panic") {
			t.Errorf("panic dead letter has no stderr tail: %q", header(m, delivery.HeaderStderr))
		}
	}
	if got["id-fail"] != "exhausted/error/3" || got["id-panic"] != "exhausted/panic/3" {
		t.Errorf("dead letters %v", got)
	}
	var lastPoison, after int64
	attempts := map[string]int{}
	for _, inv := range rep.invs {
		attempts[inv.id]++
		if inv.id == "id-fail" {
			lastPoison = max(lastPoison, inv.start)
		}
		if inv.id == "id-after" {
			after = inv.start
		}
	}
	if attempts["id-fail"] != 3 || attempts["id-panic"] != 3 {
		t.Errorf("attempts %v, want 3 each for the poison messages", attempts)
	}
	if after < lastPoison {
		t.Error("a message ran before the earlier message of its key was done")
	}
}

// A function killed with SIGKILL mid-message is a failed attempt: the
// message runs again in a new process, and nothing is lost.
func TestRestarterFunctionKilledMidMessage(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	r.publish("sleep-first=1m", 1, 1)
	r.deploy(e, r.spec(2))
	rep := r.waitFor(settle, "the first attempt to start", func(rep *report) bool { return len(rep.invs) == 1 }, statusOf(e))
	if err := syscall.Kill(rep.invs[0].pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rep = r.waitFor(settle, "the message to finish", r.allFinished, statusOf(e))
	if len(rep.invs) != 2 || rep.invs[1].attempt != 2 || rep.invs[1].pid == rep.invs[0].pid {
		t.Fatalf("invocations %+v, want a second attempt in another process", rep.invs)
	}
	if st := e.Status()[0]; st.Failed != 1 || st.DeadLettered != 0 {
		t.Fatalf("status %+v", st)
	}
}

// A hanging function is killed at its deadline with everything it
// started; nothing is left running.
func TestRestarterHangingFunctionKilledAtDeadline(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	s := r.spec(1)
	s.Timeout = restarter.Duration(time.Second)
	s.MaxAttempts = 1
	r.publish("hang", 1, 1)
	r.deploy(e, s)
	dl := consumeAll(t, r.env.Brokers, r.topic+delivery.DeadLetterSuffix, 1, settle)[0]
	if header(dl, delivery.HeaderFailure) != string(delivery.FailureTimeout) {
		t.Errorf("dead letter failure %q, want timeout", header(dl, delivery.HeaderFailure))
	}
	var pids []int
	for _, rec := range readLogAll(t, r.logPath) {
		if rec.Phase == "child" {
			pids = append(pids, rec.PID, rec.Child)
		}
	}
	if len(pids) != 2 {
		t.Fatalf("log has no child record: %+v", readLogAll(t, r.logPath))
	}
	waitGone(t, pids...)
}

// waitGone waits until no process has any of pids (a zombie of a
// grandchild, which only init can reap, counts as gone).
func waitGone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil && !isZombie(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still running", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// A function that dies before taking its message pauses its deployment
// with the reason; nothing is skipped, and a fixed binary resumes.
func TestRestarterCrashLoopAtStartup(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	r.publish("ok", 5, 1)
	r.deploy(e, r.spec(2, "TESTFN_CRASH_AT_START=1"))
	deadline := time.Now().Add(settle)
	for {
		st := e.Status()[0]
		if st.State == "paused" && st.Restarts >= 3 {
			if !strings.Contains(st.Reason, "exited before taking a message") || !strings.Contains(st.Reason, "crashing at start") {
				t.Errorf("paused with reason %q", st.Reason)
			}
			if st.Processed != 0 {
				t.Errorf("processed %d while crash-looping", st.Processed)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not paused within %v: %+v", settle, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.deploy(e, r.spec(2))
	rep := r.waitFor(settle, "every message handled after the fix", r.allFinished, statusOf(e))
	if len(rep.outOfOrder) > 0 || len(rep.invs) != 5 {
		t.Fatalf("after the fix: %s", rep)
	}
}

// A graceful stop under load finishes what is in flight and commits: the
// next engine neither loses nor repeats a message.
func TestRestarterGracefulStopHasNoDuplicates(t *testing.T) {
	r := newRig(t)
	n := 150
	r.publish("sleep=10ms", n, 15)
	e1 := r.engine()
	r.deploy(e1, r.spec(4))
	r.waitFor(settle, "a third of the messages", func(rep *report) bool { return len(rep.finished) >= n/3 }, statusOf(e1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e1.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	stopped := len(analyse(readLogAll(t, r.logPath)).invs)
	e2 := r.engine()
	r.deploy(e2, r.spec(4))
	rep := r.waitFor(settle, "every message handled", r.allFinished, statusOf(e2))
	if d := duplicates(rep); len(d) > 0 || len(rep.invs) != n {
		t.Fatalf("stopped after %d invocations; then duplicates %v (%d invocations for %d messages)", stopped, d, len(rep.invs), n)
	}
}

// A second member joining mid-run takes over partitions: nothing lost, no
// message run by two processes at once, at most the in-flight count
// repeated.
func TestRestarterSecondMemberJoins(t *testing.T) {
	r := newRig(t)
	n := 200
	r.publish("sleep=10ms", n, 20)
	e1, e2 := r.engine(), r.engine()
	r.deploy(e1, r.spec(4))
	r.waitFor(settle, "a quarter of the messages", func(rep *report) bool { return len(rep.finished) >= n/4 }, statusOf(e1))
	r.deploy(e2, r.spec(4))
	// The first member hears of the rebalance at a heartbeat, which waits
	// behind its fetch long-poll: until then it takes everything. Keep a
	// backlog until the second member has handled a message.
	for deadline := time.Now().Add(settle); e2.Status()[0].Processed == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the second member handled nothing within %v: %+v", settle, []any{e1.Status(), e2.Status()})
		}
		if rep := analyse(readLogAll(t, r.logPath)); len(rep.finished) >= len(r.sent)-40 {
			r.publish("sleep=10ms", 40, 20)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rep := r.waitFor(settle, "every message handled", r.allFinished, func() any { return []any{e1.Status(), e2.Status()} })
	if len(rep.overlaps) > 0 {
		t.Errorf("run by two processes at once: %v", rep.overlaps)
	}
	if d := duplicates(rep); len(d) > 8 {
		t.Errorf("%d duplicates, more than the 8 that can be in flight: %v", len(d), d)
	}
	s1, s2 := e1.Status()[0], e2.Status()[0]
	if s1.Processed == 0 || s2.Processed == 0 {
		t.Errorf("work not shared: %d and %d processed", s1.Processed, s2.Processed)
	}
	t.Logf("%s; processed %d + %d", rep, s1.Processed, s2.Processed)
}

// While the dead-letter topic refuses writes, the poison message is not
// committed past; when it accepts them again, it is dead-lettered and the
// partition moves on. The refusal is a real broker's: the dead-letter
// topic is created with a max.message.bytes smaller than any dead letter,
// then raised with IncrementalAlterConfigs.
func TestRestarterFailingDeadLetterPublishBlocksCommit(t *testing.T) {
	r := newRig(t)
	dlq := r.topic + delivery.DeadLetterSuffix
	admin := r.admin()
	small := "16"
	if err := admin.CreateTopic(dlq, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1,
		ConfigEntries: map[string]*string{"max.message.bytes": &small}}, false); err != nil {
		t.Fatalf("create %s: %v", dlq, err)
	}
	e, logs := r.engineLogging()
	s := r.spec(2)
	s.MaxAttempts = 1
	produce(t, r.env.Brokers, r.topic, record{key: []byte("k"), value: []byte("fail id-poison")}, record{key: []byte("k"), value: []byte("ok id-next")})
	r.deploy(e, s)
	logs.wait(t, "dead-letter publish failed; not committing", 3, settle)
	rep := analyse(readLogAll(t, r.logPath))
	if len(rep.invs) != 1 {
		t.Fatalf("invocations while the poison is stuck: %s", rep)
	}
	part := rep.invs[0].partition
	if got := committed(t, r.brokers, s.Name, r.topic, part); got > rep.invs[0].offset {
		t.Fatalf("committed %d past the poison at %d while its dead letter was refused", got, rep.invs[0].offset)
	}
	big := "1048588" // Kafka's default
	if err := admin.IncrementalAlterConfig(sarama.TopicResource, dlq, map[string]sarama.IncrementalAlterConfigsEntry{
		"max.message.bytes": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &big}}, false); err != nil {
		t.Fatalf("raise max.message.bytes of %s: %v", dlq, err)
	}
	consumeAll(t, r.env.Brokers, dlq, 1, settle)
	r.sent = []sentMsg{{id: "id-poison"}, {id: "id-next"}}
	r.waitFor(settle, "the next message", r.allFinished, statusOf(e))
	deadline := time.Now().Add(settle)
	for committed(t, r.brokers, s.Name, r.topic, part) <= rep.invs[0].offset+1 {
		if time.Now().After(deadline) {
			t.Fatal("commit did not move past the poison after its dead letter landed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func committed(t *testing.T, brokers []string, group, topic string, partition int32) int64 {
	t.Helper()
	return committedMeta(t, brokers, group, topic, partition).Offset
}

// Odd records reach the function exactly: null and empty values, binary
// data, a message near Kafka's default 1 MiB limit.
func TestRestarterOddRecordsArriveExactly(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	big := make([]byte, 1<<20-512)
	for i := range big {
		big[i] = byte(i * 7)
	}
	recs := []record{
		{key: []byte("null"), value: nil},
		{key: []byte("empty"), value: []byte{}},
		{key: []byte("binary"), value: []byte{0, 0xff, '\n', 0, 1}},
		{key: []byte("big"), value: big},
	}
	produce(t, r.env.Brokers, r.topic, recs...)
	r.deploy(e, r.spec(2))
	var log []fnRecord
	deadline := time.Now().Add(settle)
	for len(log) < len(recs) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records reached the function; status %+v", len(log), len(recs), e.Status())
		}
		time.Sleep(20 * time.Millisecond)
		log = readLog(t, r.logPath)
	}
	byKey := map[string]fnRecord{}
	for _, l := range log {
		byKey[*l.Key] = l
	}
	for _, rec := range recs {
		got := byKey[string(rec.key)]
		if string(got.Value) != string(rec.value) || got.Null != (rec.value == nil) {
			t.Errorf("%s: got %d bytes (null %v), want %d (null %v)", rec.key, len(got.Value), got.Null, len(rec.value), rec.value == nil)
		}
	}
}

func TestRestarterRefusesBadSpecsAndNames(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	ctx := context.Background()
	bad := []restarter.Spec{
		{Name: "x", Binary: r.bin, Topic: r.topic, Pool: -1},
		{Name: "x", Binary: r.bin},
		{Name: "bad name!", Binary: r.bin, Topic: r.topic},
		{Name: "x", Binary: r.bin, Topic: r.topic, Order: "random"},
		{Name: "x", Binary: "/nonexistent/fn", Topic: r.topic},
		{Name: "x", Binary: r.bin, Topic: r.topic, DeadLetter: r.topic},
	}
	for _, s := range bad {
		if err := e.Deploy(ctx, s); err == nil {
			t.Errorf("Deploy(%+v) succeeded", s)
		}
	}
	if err := e.Remove(ctx, "nope"); !errors.Is(err, restarter.ErrNotFound) {
		t.Errorf("Remove(nope) = %v", err)
	}
	if err := e.Scale("nope", 2, 2); !errors.Is(err, restarter.ErrNotFound) {
		t.Errorf("Scale(nope) = %v", err)
	}
	if len(e.Status()) != 0 {
		t.Errorf("bad specs left deployments: %+v", e.Status())
	}

	// A binary without subscribers never becomes ready: the deployment
	// pauses and says why.
	s := r.spec(1)
	s.Binary = build(t, "tests/nosubs")
	r.deploy(e, s)
	deadline := time.Now().Add(settle)
	for {
		st := e.Status()[0]
		if st.State == "paused" && strings.Contains(st.Reason, "declares no subscribers") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.Scale(s.Name, 0, 0); err == nil {
		t.Error("Scale to 0 succeeded")
	}
	if err := e.Scale(s.Name, 3, 2); err == nil {
		t.Error("Scale to a min above the max succeeded")
	}
}

// waitWarm waits until the engine's first deployment has n warm processes.
func waitWarm(t *testing.T, e *restarter.Engine, n int) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		if st := e.Status(); len(st) > 0 && st[0].Warm >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %d warm processes within %v: %+v", n, settle, e.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An invocation over its memory limit is a failed attempt, dead-lettered
// with the runtime's complaint; one within the limit is not affected.
func TestRestarterMemoryLimit(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	s := r.spec(1)
	s.Binary = buildWithoutRace(t, "tests/testfn")
	s.MemoryLimit = 64 << 20
	s.MaxAttempts = 1
	produce(t, r.env.Brokers, r.topic, record{key: []byte("a"), value: []byte("alloc=8 id-small")},
		record{key: []byte("b"), value: []byte("alloc=256 id-big")})
	r.deploy(e, s)
	dl := consumeAll(t, r.env.Brokers, r.topic+delivery.DeadLetterSuffix, 1, settle)[0]
	// Refused memory makes the Go runtime die with a fatal error (exit 2),
	// reported as "out of memory" or as a fault inside the runtime.
	if !strings.Contains(string(dl.Value), "id-big") || header(dl, delivery.HeaderExitCode) != "2" || header(dl, delivery.HeaderStderr) == "" {
		t.Fatalf("dead letter %q, exit code %q, stderr %.300q", dl.Value, header(dl, delivery.HeaderExitCode), header(dl, delivery.HeaderStderr))
	}
	deadline := time.Now().Add(settle)
	for e.Status()[0].Processed < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the small allocation was not processed: %+v", e.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running and removing a deployment leaks no file descriptors: every
// process's pipes are closed once it has exited.
func TestRestarterLeaksNoDescriptors(t *testing.T) {
	r := newRig(t)
	e := r.engine()
	before := openFDs(t)
	r.publish("ok", 40, 8)
	r.deploy(e, r.spec(4))
	r.waitFor(settle, "every message handled", r.allFinished, statusOf(e))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Remove(ctx, r.spec(4).Name); err != nil {
		t.Fatal(err)
	}
	// Connections the Kafka clients close may take a moment to go.
	deadline := time.Now().Add(30 * time.Second)
	for {
		after := openFDs(t)
		if after <= before+2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open before the deployment, %d after it was removed", before, after)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
