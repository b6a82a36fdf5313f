package tests

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/fnproto"
	"github.com/microfn/microfn/internal/testenv"
)

const runTimeout = 60 * time.Second

// N messages → N runs: each run takes exactly one message, in offset order
// per partition, and nothing is lost or handled twice.
func TestStandaloneTakesOneMessagePerRunInOrder(t *testing.T) {
	env := testenv.Broker(t)
	bin := build(t, "tests/testfn")
	topic := testenv.Topic(t)
	logPath := filepath.Join(t.TempDir(), "log")
	n := 12
	if testing.Short() {
		n = 6
	}
	var recs []record
	for i := range n {
		recs = append(recs, record{key: []byte(fmt.Sprintf("k%d", i%3)), value: []byte(fmt.Sprintf("ok id-%d", i))})
	}
	produce(t, env.Brokers, topic, recs...)

	for i := range n {
		r := run(t, runTimeout, bin, testfnEnv(env.Brokers, topic, logPath))
		if r.code != fnproto.ExitOK {
			t.Fatalf("run %d: exit %d\n%s", i, r.code, r.stderr)
		}
		if got := len(readLog(t, logPath)); got != i+1 {
			t.Fatalf("after run %d the function handled %d messages in all, want %d", i, got, i+1)
		}
	}
	log := readLog(t, logPath)
	seen := map[string]bool{}
	pids := map[int]bool{}
	last := map[int32]int64{}
	for _, r := range log {
		id := string(r.Value)
		if seen[id] {
			t.Errorf("%q handled twice", id)
		}
		seen[id] = true
		pids[r.PID] = true
		if prev, ok := last[r.Partition]; ok && r.Offset <= prev {
			t.Errorf("partition %d: offset %d handled after %d", r.Partition, r.Offset, prev)
		}
		last[r.Partition] = r.Offset
		if r.Attempt != 1 {
			t.Errorf("%q on attempt %d, want 1", id, r.Attempt)
		}
	}
	for _, rec := range recs {
		if !seen[string(rec.value)] {
			t.Errorf("%q was never handled", rec.value)
		}
	}
	if len(pids) != n {
		t.Errorf("%d messages handled by %d processes, want one each", n, len(pids))
	}
}

// A failing message is retried across runs, then dead-lettered with headers
// that say why, and the message after it is not blocked.
func TestStandaloneRetriesThenDeadLetters(t *testing.T) {
	env := testenv.Broker(t)
	bin := build(t, "tests/testfn")
	topic := testenv.Topic(t)
	logPath := filepath.Join(t.TempDir(), "log")
	key := []byte("same-key")
	produce(t, env.Brokers, topic,
		record{key: key, value: []byte("fail id-1"), headers: map[string]string{"trace": "t1"}},
		record{key: key, value: []byte("ok id-2")})
	envv := testfnEnv(env.Brokers, topic, logPath, "FN_MAX_ATTEMPTS=3")

	for attempt, want := range []int{fnproto.ExitRetry, fnproto.ExitRetry, fnproto.ExitOK, fnproto.ExitOK} {
		if r := run(t, runTimeout, bin, envv); r.code != want {
			t.Fatalf("run %d: exit %d, want %d\n%s", attempt+1, r.code, want, r.stderr)
		}
	}
	log := readLog(t, logPath)
	var got []string
	for _, r := range log {
		got = append(got, fmt.Sprintf("%s#%d", r.Value, r.Attempt))
	}
	if want := "fail id-1#1 fail id-1#2 fail id-1#3 ok id-2#1"; strings.Join(got, " ") != want {
		t.Fatalf("invocations: %s\nwant:        %s", strings.Join(got, " "), want)
	}
	dl := consumeAll(t, env.Brokers, topic+delivery.DeadLetterSuffix, 1, 30*time.Second)[0]
	want := map[string]string{
		delivery.HeaderReason: string(delivery.ReasonExhausted), delivery.HeaderFailure: string(delivery.FailureError), delivery.HeaderAttempts: "3",
		delivery.HeaderFunction: "testfn", delivery.HeaderTopic: topic, delivery.HeaderOffset: fmt.Sprint(log[0].Offset),
		delivery.HeaderPartition: fmt.Sprint(log[0].Partition), delivery.HeaderError: "told to fail", "trace": "t1",
	}
	for k, v := range want {
		if got := header(dl, k); got != v {
			t.Errorf("dead letter header %s = %q, want %q", k, got, v)
		}
	}
	if string(dl.Key) != string(key) || string(dl.Value) != "fail id-1" {
		t.Errorf("dead letter record key %q value %q", dl.Key, dl.Value)
	}
}

func TestStandalonePermanentAndPanic(t *testing.T) {
	env := testenv.Broker(t)
	bin := build(t, "tests/testfn")
	topic := testenv.Topic(t)
	logPath := filepath.Join(t.TempDir(), "log")
	key := []byte("k")
	produce(t, env.Brokers, topic, record{key: key, value: []byte("permanent")}, record{key: key, value: []byte("panic")})
	envv := testfnEnv(env.Brokers, topic, logPath, "FN_MAX_ATTEMPTS=2")
	for i, want := range []int{fnproto.ExitOK, fnproto.ExitRetry, fnproto.ExitOK} {
		if r := run(t, runTimeout, bin, envv); r.code != want {
			t.Fatalf("run %d: exit %d, want %d\n%s", i+1, r.code, want, r.stderr)
		}
	}
	dls := consumeAll(t, env.Brokers, topic+delivery.DeadLetterSuffix, 2, 30*time.Second)
	reasons := map[string]string{}
	for _, m := range dls {
		reasons[string(m.Value)] = header(m, delivery.HeaderReason) + "/" + header(m, delivery.HeaderFailure)
	}
	if reasons["permanent"] != "permanent/permanent" || reasons["panic"] != "exhausted/panic" {
		t.Fatalf("dead letter reasons %v", reasons)
	}
}

// A payload the codec cannot decode is dead-lettered at once with the reason.
func TestStandaloneUndecodablePayloadIsDeadLettered(t *testing.T) {
	env := testenv.Broker(t)
	bin := build(t, "examples/greeter")
	topic := testenv.Topic(t)
	produce(t, env.Brokers, topic, record{value: []byte("not json")})
	r := run(t, runTimeout, bin, []string{"FN_BROKERS=" + env.Brokers, "FN_TOPIC=" + topic, "FN_GROUP=" + topic})
	if r.code != fnproto.ExitOK {
		t.Fatalf("greeter exit %d\n%s", r.code, r.stderr)
	}
	m := consumeAll(t, env.Brokers, topic+delivery.DeadLetterSuffix, 1, 30*time.Second)[0]
	if string(m.Value) != "not json" || header(m, delivery.HeaderReason) != string(delivery.ReasonDecode) ||
		header(m, delivery.HeaderAttempts) != "1" || !strings.Contains(header(m, delivery.HeaderError), "decode json payload") {
		t.Fatalf("dead letter %q with headers %v", m.Value, m.Headers)
	}
}

// A signal before a message arrives stops the binary without consuming.
func TestStandaloneInterruptedWhileWaiting(t *testing.T) {
	env := testenv.Broker(t)
	bin := build(t, "tests/testfn")
	topic := testenv.Topic(t)
	logPath := filepath.Join(t.TempDir(), "log")
	produce(t, env.Brokers, topic, record{value: []byte("ok first")})
	if r := run(t, runTimeout, bin, testfnEnv(env.Brokers, topic, logPath)); r.code != fnproto.ExitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	code, stderr := runUntilSignal(t, bin, testfnEnv(env.Brokers, topic, logPath), "joined", syscall.SIGTERM)
	if code != fnproto.ExitInterrupted {
		t.Fatalf("exit %d after SIGTERM while waiting, want %d\n%s", code, fnproto.ExitInterrupted, stderr)
	}
	if n := len(readLog(t, logPath)); n != 1 {
		t.Fatalf("%d invocations, want 1", n)
	}
}
