package tests

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/testenv"
	"github.com/microfn/microfn/restarter"
)

// rigPartitions is the partition count of a rig's topic.
const rigPartitions = 4

// rig is one restarter test: a topic, the lean test function, its log.
type rig struct {
	t       *testing.T
	env     *testenv.Env
	brokers []string
	bin     string
	topic   string
	logPath string
	sent    []sentMsg
}

type sentMsg struct {
	id, key, op string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return newRigPartitions(t, rigPartitions)
}

// newRigPartitions is newRig with a topic of the given partition count.
func newRigPartitions(t *testing.T, partitions int32) *rig {
	t.Helper()
	env := testenv.Broker(t)
	brokers, err := kafka.ParseBrokers(env.Brokers)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, env: env, brokers: brokers, bin: build(t, "tests/testfn"),
		topic: testenv.Topic(t), logPath: filepath.Join(t.TempDir(), "log")}
	// Created up front with a known partition count, whatever the broker's
	// num.partitions (Kafka's default is 1, the embedded broker's 4).
	createTopic(t, env.Brokers, r.topic, partitions)
	return r
}

// engine starts an engine that the test closes at its end.
func (r *rig) engine() *restarter.Engine {
	r.t.Helper()
	e, err := restarter.New(restarter.Config{Brokers: r.brokers, LogDir: r.t.TempDir(), CommitInterval: 100 * time.Millisecond})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e.Close(ctx)
	})
	return e
}

// engineLogging is engine with the engine's log kept for the test.
func (r *rig) engineLogging() (*restarter.Engine, *logLines) {
	r.t.Helper()
	logs := &logLines{}
	e, err := restarter.New(restarter.Config{Brokers: r.brokers, LogDir: r.t.TempDir(), CommitInterval: 100 * time.Millisecond,
		Logger: slog.New(logs)})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e.Close(ctx)
	})
	return e, logs
}

// admin is a Kafka admin client that the test closes at its end.
func (r *rig) admin() sarama.ClusterAdmin {
	r.t.Helper()
	a, err := sarama.NewClusterAdmin(r.brokers, testConfig())
	if err != nil {
		r.t.Fatalf("admin client: %v", err)
	}
	r.t.Cleanup(func() { a.Close() })
	return a
}

// logLines is a slog.Handler that keeps every record's message and
// attributes as one line.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) WithAttrs(as []slog.Attr) slog.Handler {
	return &logAttrs{l: l, attrs: as}
}
func (l *logLines) WithGroup(string) slog.Handler { return l }
func (l *logLines) Handle(_ context.Context, rec slog.Record) error {
	return (&logAttrs{l: l}).Handle(context.Background(), rec)
}

type logAttrs struct {
	l     *logLines
	attrs []slog.Attr
}

func (h *logAttrs) Enabled(context.Context, slog.Level) bool { return true }
func (h *logAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	return &logAttrs{l: h.l, attrs: append(slices.Clone(h.attrs), as...)}
}
func (h *logAttrs) WithGroup(string) slog.Handler { return h }
func (h *logAttrs) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.l.mu.Lock()
	h.l.lines = append(h.l.lines, b.String())
	h.l.mu.Unlock()
	return nil
}

// snapshot returns the lines so far.
func (l *logLines) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// count is how many lines contain s.
func (l *logLines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// wait waits until n lines contain s.
func (l *logLines) wait(t *testing.T, s string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for l.count(s) < n {
		if time.Now().After(deadline) {
			got := l.count(s)
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("%d log lines with %q within %v, want %d; the log:\n%s", got, s, timeout, n, strings.Join(l.lines, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rig) spec(pool int, env ...string) restarter.Spec {
	return restarter.Spec{Name: "d-" + r.topic, Binary: r.bin, Topic: r.topic, Pool: pool,
		Env: append([]string{"TESTFN_LOG=" + r.logPath}, env...)}
}

func (r *rig) deploy(e *restarter.Engine, s restarter.Spec) {
	r.t.Helper()
	if err := e.Deploy(context.Background(), s); err != nil {
		r.t.Fatalf("deploy: %v", err)
	}
}

// publish sends n messages "op id-i" with keys k(i mod keys).
func (r *rig) publish(op string, n, keys int) []sentMsg {
	r.t.Helper()
	var recs []record
	var out []sentMsg
	for range n {
		i := len(r.sent)
		m := sentMsg{id: fmt.Sprintf("id-%d", i), key: fmt.Sprintf("k%d", i%keys), op: op}
		r.sent = append(r.sent, m)
		out = append(out, m)
		recs = append(recs, record{key: []byte(m.key), value: []byte(op + " " + m.id)})
	}
	produce(r.t, r.env.Brokers, r.topic, recs...)
	return out
}

// waitFor polls the log until ok holds, failing with what after timeout.
func (r *rig) waitFor(timeout time.Duration, what string, ok func(*report) bool, status func() any) *report {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rep := analyse(readLogAll(r.t, r.logPath))
		if ok(rep) {
			return rep
		}
		if time.Now().After(deadline) {
			var st any
			if status != nil {
				st = status()
			}
			r.t.Fatalf("no %s within %v: %s\nstatus: %+v", what, timeout, rep, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// invocation is one process's run of one message.
type invocation struct {
	id, key    string
	pid        int
	partition  int32
	offset     int64
	attempt    int
	start, end int64 // end 0: cut off
}

// report is what the log says about delivery.
type report struct {
	invs       []invocation
	finished   map[string]int // id → finished invocations
	overlaps   []string       // ids run by two processes at once
	outOfOrder []string       // keys whose messages started out of offset order
	maxConc    int            // most invocations running at once
	pids       map[int]bool
}

func (rep *report) String() string {
	return fmt.Sprintf("%d invocations, %d ids finished, %d processes, overlaps %v, out of order %v, max concurrency %d",
		len(rep.invs), len(rep.finished), len(rep.pids), rep.overlaps, rep.outOfOrder, rep.maxConc)
}

func analyse(recs []fnRecord) *report {
	rep := &report{finished: map[string]int{}, pids: map[int]bool{}}
	byPid := map[int]int{}
	for _, r := range recs {
		id := string(r.Value)
		if _, after, ok := strings.Cut(id, " "); ok {
			id = after
		}
		key := ""
		if r.Key != nil {
			key = *r.Key
		}
		switch r.Phase {
		case "start":
			byPid[r.PID] = len(rep.invs)
			rep.invs = append(rep.invs, invocation{id: id, key: key, pid: r.PID, partition: r.Partition,
				offset: r.Offset, attempt: r.Attempt, start: r.At})
			rep.pids[r.PID] = true
		case "end":
			if i, ok := byPid[r.PID]; ok {
				rep.invs[i].end = r.At
				rep.finished[id]++
			}
		}
	}
	byID := map[string][]invocation{}
	byKey := map[string][]invocation{}
	type edge struct {
		at    int64
		delta int
	}
	var edges []edge
	for _, inv := range rep.invs {
		byID[inv.id] = append(byID[inv.id], inv)
		if inv.key != "" {
			byKey[inv.key] = append(byKey[inv.key], inv)
		}
		if inv.end != 0 {
			edges = append(edges, edge{inv.start, 1}, edge{inv.end, -1})
		}
	}
	for id, invs := range byID {
		for i := range invs {
			for j := i + 1; j < len(invs); j++ {
				a, b := invs[i], invs[j]
				if a.end != 0 && b.end != 0 && a.start < b.end && b.start < a.end {
					rep.overlaps = append(rep.overlaps, id)
				}
			}
		}
	}
	for key, invs := range byKey {
		sort.Slice(invs, func(i, j int) bool { return invs[i].start < invs[j].start })
		for i := 1; i < len(invs); i++ {
			if invs[i].offset < invs[i-1].offset && invs[i].partition == invs[i-1].partition {
				rep.outOfOrder = append(rep.outOfOrder, key)
				break
			}
		}
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at != edges[j].at {
			return edges[i].at < edges[j].at
		}
		return edges[i].delta < edges[j].delta
	})
	cur := 0
	for _, e := range edges {
		cur += e.delta
		rep.maxConc = max(rep.maxConc, cur)
	}
	slices.Sort(rep.overlaps)
	return rep
}

// allFinished says every sent id finished at least once.
func (r *rig) allFinished(rep *report) bool {
	for _, m := range r.sent {
		if rep.finished[m.id] == 0 {
			return false
		}
	}
	return true
}

// duplicates lists ids that finished more than once.
func duplicates(rep *report) []string {
	var out []string
	for id, n := range rep.finished {
		if n > 1 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func statusOf(e *restarter.Engine) func() any { return func() any { return e.Status() } }
