package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/attempts"
	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/restarter"
)

// Kafka refuses commit metadata over offset.metadata.max.bytes (4096 by
// default) with OFFSET_METADATA_TOO_LARGE; the embedded broker takes any
// size. These tests make the restarter keep its attempt counts and the
// offsets it finished above the watermark in that metadata, on a real
// Kafka as on the embedded broker.

// committedMeta returns the group's committed offset and metadata of
// partition.
func committedMeta(t *testing.T, brokers []string, group, topic string, partition int32) kafka.Commit {
	t.Helper()
	client, err := sarama.NewClient(brokers, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := kafka.FetchCommitted(client, group, topic, []int32{partition})
	if err != nil {
		t.Fatal(err)
	}
	return c[partition]
}

// A message's failed attempts survive a restart of the restarter: the
// attempt the next engine runs is numbered after them, and the message is
// dead-lettered after MaxAttempts in all, not MaxAttempts more.
func TestRestarterAttemptCountsSurviveRestart(t *testing.T) {
	r := newRigPartitions(t, 1)
	s := r.spec(1)
	s.MaxAttempts = 3
	produce(t, r.env.Brokers, r.topic, record{key: []byte("k"), value: []byte("sleep-fail=3s id-x")})
	r.sent = []sentMsg{{id: "id-x"}}

	e1 := r.engine()
	r.deploy(e1, s)
	// Stop while the second attempt runs (3 s, ample for the log poll to
	// see it start): it finishes, its failure is committed, and the retry
	// it schedules is dropped with the partition.
	r.waitFor(settle, "a second attempt", func(rep *report) bool { return len(rep.invs) == 2 }, statusOf(e1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e1.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	rep := analyse(readLogAll(t, r.logPath))
	if len(rep.invs) != 2 || rep.finished["id-x"] != 2 {
		t.Fatalf("before the restart: %s", rep)
	}
	c := committedMeta(t, r.brokers, s.Name, r.topic, 0)
	if e, ok := attempts.Find(attempts.Decode(c.Metadata), rep.invs[0].offset); c.Offset != rep.invs[0].offset || !ok || e.Failed != 2 {
		t.Fatalf("committed %d %q: want the message's offset with 2 failed attempts", c.Offset, c.Metadata)
	}

	e2 := r.engine()
	r.deploy(e2, s)
	dl := consumeAll(t, r.env.Brokers, r.topic+delivery.DeadLetterSuffix, 1, settle)[0]
	if got := header(dl, delivery.HeaderAttempts); got != "3" {
		t.Errorf("dead-lettered after %s attempts, want 3", got)
	}
	rep = analyse(readLogAll(t, r.logPath))
	var got []int
	for _, inv := range rep.invs {
		got = append(got, inv.attempt)
	}
	if fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("attempts %v, want [1 2 3]", got)
	}
}

// One slow key holds the watermark of a partition while thousands of
// messages of other keys finish above it, leaving hundreds of holes: the
// commits go on (their metadata kept under Kafka's limit, the lowest
// finished ranges first), and nothing runs twice.
func TestRestarterCommitsManyFinishedAboveSlowKey(t *testing.T) {
	r := newRigPartitions(t, 1)
	n, slowEvery := 2000, 5
	if testing.Short() {
		n = 500
	}
	flag := filepath.Join(t.TempDir(), "slow")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var recs []record
	for i := range n {
		m := sentMsg{id: fmt.Sprintf("id-%d", i), key: fmt.Sprintf("k%d", i%50), op: "ok"}
		switch {
		case i == 0:
			m.key, m.op = "slow", "block-while="+flag
		case i%slowEvery == 0:
			m.key = "slow"
		}
		r.sent = append(r.sent, m)
		recs = append(recs, record{key: []byte(m.key), value: []byte(m.op + " " + m.id)})
	}
	produce(t, r.env.Brokers, r.topic, recs...)
	e := r.engine()
	t.Cleanup(func() { os.Remove(flag) }) // before the engine's close, which waits for the slow key
	s := r.spec(8)
	s.Timeout = restarter.Duration(5 * time.Minute)
	r.deploy(e, s)

	fast := func(rep *report) bool {
		for _, m := range r.sent {
			if m.key != "slow" && rep.finished[m.id] == 0 {
				return false
			}
		}
		return true
	}
	// 1600 processes: a bound for a machine shared with other work, not a
	// speed requirement.
	r.waitFor(3*settle, "every message of the fast keys", fast, statusOf(e))
	holes := n/slowEvery - 1 // later messages of the slow key, each a gap between finished ranges
	// Every finished range Encode can keep: what fits in one metadata string.
	wantRanges := min(holes, attempts.MaxEntries)
	deadline := time.Now().Add(settle)
	for {
		c := committedMeta(t, r.brokers, s.Name, r.topic, 0)
		done := attempts.DecodeDone(c.Metadata)
		if c.Offset == 0 && len(done) == wantRanges {
			if len(c.Metadata) > 4096 {
				t.Fatalf("committed metadata of %d bytes, over Kafka's default limit", len(c.Metadata))
			}
			t.Logf("committed offset %d with %d finished ranges in %d bytes of metadata", c.Offset, len(done), len(c.Metadata))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %d with %d finished ranges (%.80q...), want offset 0 and %d ranges; status %+v",
				c.Offset, len(done), c.Metadata, wantRanges, e.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}

	os.Remove(flag)
	rep := r.waitFor(3*settle, "every message", r.allFinished, statusOf(e))
	if d := duplicates(rep); len(d) > 0 || len(rep.outOfOrder) > 0 {
		t.Fatalf("duplicates %v, out of key order %v", d, rep.outOfOrder)
	}
	deadline = time.Now().Add(settle)
	for {
		c := committedMeta(t, r.brokers, s.Name, r.topic, 0)
		if c.Offset == int64(n) && !strings.Contains(c.Metadata, "d:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %d %.80q, want %d and no finished ranges", c.Offset, c.Metadata, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
