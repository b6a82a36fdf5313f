package tests

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/microfn/microfn/broker"
	"github.com/microfn/microfn/fn"
	"github.com/microfn/microfn/fn/fntest"
	"github.com/microfn/microfn/internal/attempts"
	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/testenv"
	"github.com/microfn/microfn/internal/testfn"
	"github.com/microfn/microfn/restarter"
)

// The delivery contract: one table of behaviours, each one message in and
// one outcome out, run against every way a function runs. As in
// watermill's universal pub/sub tests, each host says with contractFeatures
// what differs by design; a behaviour a host cannot have is skipped with
// the reason, never silently.

// contractFeatures is what a host guarantees beyond the common contract.
type contractFeatures struct {
	// Broker: the host consumes from Kafka and publishes events and dead
	// letters to it. fntest has none: it reports outcomes and events.
	Broker bool
	// ProcessIsolation: a handler that ends its process fails an attempt
	// of its own message; nothing else is touched.
	ProcessIsolation bool
	// DurableAttempts: a message's attempt count survives a restart of
	// the host.
	DurableAttempts bool
	// ObservesExit: the host sees how a function process ended (exit
	// code, signal) and names it in the dead letter. A standalone run
	// that crashes is only noticed by the next run.
	ObservesExit bool
}

// contractCase is one behaviour: a message and what it meets.
type contractCase struct {
	payload     string
	json        bool // the subscriber decodes a JSON payload
	maxAttempts int
	timeout     time.Duration
	// eventsFault and dlqFault make the broker refuse produce requests to
	// the events topic or the dead-letter topic.
	eventsFault, dlqFault faultMode
	// restart stops the host after the first failed attempt was recorded
	// and starts it again.
	restart bool
}

// faultMode is how the broker refuses a topic's produce requests.
type faultMode int

const (
	noFault faultMode = iota
	// refuseUntilReleased refuses with a retryable error until the case
	// has seen the host fail and keep the message uncommitted.
	refuseUntilReleased
	// refuseForGood refuses the records themselves (MESSAGE_TOO_LARGE).
	refuseForGood
)

// observation is what became of the message, as seen from outside.
type observation struct {
	invocations int // handler calls (process hosts: started invocations)
	// beforeRestart is how many had started when the host was restarted.
	beforeRestart int
	outcome       string // "ack" or "dead-letter"
	// From the dead letter's headers.
	reason, failure, attempts, exitCode string
	events                              []observedEvent
}

type observedEvent struct{ topic, key, value, from string }

func (o observation) String() string {
	return fmt.Sprintf("%d invocation(s), %s (reason %q, failure %q, attempts %q, exit code %q), events %v",
		o.invocations, o.outcome, o.reason, o.failure, o.attempts, o.exitCode, o.events)
}

type contractHost interface {
	name() string
	features() contractFeatures
	// run delivers one message of c to the function and observes it.
	run(t *testing.T, c contractCase) observation
}

// A behaviour, with the outcome every host must show.
type behaviour struct {
	name  string
	c     contractCase
	needs func(contractFeatures) string // why a host cannot run it; "" when it can
	check func(t *testing.T, h contractFeatures, o observation)
}

func needsBroker(f contractFeatures) string {
	if !f.Broker {
		return "the host has no broker to publish to"
	}
	return ""
}

func wantOutcome(t *testing.T, o observation, outcome, reason, failure string, attempts, invocations int) {
	t.Helper()
	if o.outcome != outcome || o.reason != reason || o.failure != failure ||
		(attempts > 0 && o.attempts != fmt.Sprint(attempts)) || o.invocations != invocations {
		t.Fatalf("got %s\nwant %s (reason %q, failure %q, attempts %d) after %d invocation(s)", o, outcome, reason, failure, attempts, invocations)
	}
}

var behaviours = []behaviour{
	{name: "ack", c: contractCase{payload: "ok"}, check: func(t *testing.T, _ contractFeatures, o observation) {
		wantOutcome(t, o, "ack", "", "", 0, 1)
	}},
	{name: "error-retried-then-dead-lettered", c: contractCase{payload: "fail", maxAttempts: 3},
		check: func(t *testing.T, _ contractFeatures, o observation) {
			wantOutcome(t, o, "dead-letter", "exhausted", "error", 3, 3)
		}},
	{name: "retry-succeeds", c: contractCase{payload: "fail-until=2", maxAttempts: 3},
		check: func(t *testing.T, _ contractFeatures, o observation) { wantOutcome(t, o, "ack", "", "", 0, 2) }},
	{name: "permanent-dead-lettered-at-once", c: contractCase{payload: "permanent", maxAttempts: 3},
		check: func(t *testing.T, _ contractFeatures, o observation) {
			wantOutcome(t, o, "dead-letter", "permanent", "permanent", 1, 1)
		}},
	{name: "undecodable-dead-lettered-uncalled", c: contractCase{payload: `{"cmd":`, json: true, maxAttempts: 3},
		check: func(t *testing.T, _ contractFeatures, o observation) {
			wantOutcome(t, o, "dead-letter", "decode", "decode", 1, 0)
		}},
	{name: "panic-is-a-failed-attempt", c: contractCase{payload: "panic", maxAttempts: 2},
		check: func(t *testing.T, _ contractFeatures, o observation) {
			wantOutcome(t, o, "dead-letter", "exhausted", "panic", 2, 2)
		}},
	{name: "timeout-is-a-failed-attempt", c: contractCase{payload: "sleep=30s", maxAttempts: 1, timeout: 300 * time.Millisecond},
		check: func(t *testing.T, _ contractFeatures, o observation) {
			wantOutcome(t, o, "dead-letter", "exhausted", "timeout", 1, 1)
		}},
	{name: "process-ending-itself-is-a-failed-attempt", c: contractCase{payload: "exit=3", maxAttempts: 2},
		needs: func(f contractFeatures) string {
			if !f.ProcessIsolation {
				return "the handler shares its process with the host"
			}
			return ""
		},
		check: func(t *testing.T, f contractFeatures, o observation) {
			wantOutcome(t, o, "dead-letter", "exhausted", "crash", 2, 2)
			if want := map[bool]string{true: "3"}[f.ObservesExit]; o.exitCode != want {
				t.Fatalf("fn_exit_code %q, want %q", o.exitCode, want)
			}
		}},
	{name: "events-published-on-success", c: contractCase{payload: "emit=%s"},
		check: func(t *testing.T, _ contractFeatures, o observation) {
			wantOutcome(t, o, "ack", "", "", 0, 1)
			if len(o.events) != 1 || o.events[0].key != "k" || o.events[0].from != "testfn" {
				t.Fatalf("events %v, want one with key k and header from=testfn", o.events)
			}
		}},
	{name: "events-republished-not-handler",
		c: contractCase{payload: "emit=%s", eventsFault: refuseUntilReleased}, needs: needsBroker,
		check: func(t *testing.T, _ contractFeatures, o observation) {
			wantOutcome(t, o, "ack", "", "", 0, 1)
			if len(o.events) != 1 {
				t.Fatalf("events %v, want exactly one", o.events)
			}
		}},
	{name: "events-refused-for-good-dead-letter",
		c: contractCase{payload: "emit=%s", eventsFault: refuseForGood}, needs: needsBroker,
		check: func(t *testing.T, _ contractFeatures, o observation) {
			wantOutcome(t, o, "dead-letter", "publish", "publish", 1, 1)
			if len(o.events) != 0 {
				t.Fatalf("events %v published though the broker refused them", o.events)
			}
		}},
	{name: "dead-letter-refused-blocks-commit",
		c: contractCase{payload: "permanent", dlqFault: refuseUntilReleased}, needs: needsBroker,
		check: func(t *testing.T, _ contractFeatures, o observation) {
			wantOutcome(t, o, "dead-letter", "permanent", "permanent", 1, 1)
		}},
	{name: "attempts-survive-host-restart",
		c: contractCase{payload: "fail", maxAttempts: 3, restart: true}, needs: needsBroker,
		check: func(t *testing.T, f contractFeatures, o observation) {
			if f.DurableAttempts {
				wantOutcome(t, o, "dead-letter", "exhausted", "error", 3, 3)
				return
			}
			// Counted in memory: after the restart the message starts again
			// at its first attempt.
			wantOutcome(t, o, "dead-letter", "exhausted", "error", 3, o.beforeRestart+3)
		}},
}

func TestDeliveryContract(t *testing.T) {
	hosts := []contractHost{restarterHost{}, standaloneHost{}, serveHost{}, fntestHost{}}
	for _, h := range hosts {
		t.Run(h.name(), func(t *testing.T) {
			for _, b := range behaviours {
				t.Run(b.name, func(t *testing.T) {
					if b.needs != nil {
						if why := b.needs(h.features()); why != "" {
							t.Skipf("%s: %s", h.name(), why)
						}
					}
					c := b.c
					if c.maxAttempts == 0 {
						c.maxAttempts = 3
					}
					if c.timeout == 0 {
						c.timeout = 10 * time.Second
					}
					b.check(t, h.features(), h.run(t, c))
				})
			}
		})
	}
}

// ---- the hosts ----

// brokerRun is one case on the test broker: a topic, the message on it,
// and the faults.
type brokerRun struct {
	t       *testing.T
	env     *testenv.Env
	c       contractCase
	topic   string
	events  string // the topic "emit" writes to
	dlq     string
	group   string
	logPath string
	payload string

	partition int32
	offset    int64
	// beforeRestart is how many invocations had started when the host
	// was stopped to be started again.
	beforeRestart int

	eventsFault, dlqFault *produceFault
}

func newBrokerRun(t *testing.T, c contractCase) *brokerRun {
	t.Helper()
	env := testenv.Broker(t)
	r := &brokerRun{t: t, env: env, c: c, topic: testenv.Topic(t), logPath: filepath.Join(t.TempDir(), "log")}
	r.events, r.dlq, r.group = r.topic+"-events", r.topic+delivery.DeadLetterSuffix, r.topic
	r.payload = c.payload
	if strings.Contains(r.payload, "%s") {
		r.payload = fmt.Sprintf(r.payload, r.events)
	}
	if c.json && !strings.HasPrefix(r.payload, "{") {
		r.payload = fmt.Sprintf(`{"cmd":%q}`, r.payload)
	}
	if c.eventsFault != noFault || c.dlqFault != noFault {
		r.eventsFault = injectProduceFault(t, env, r.events, c.eventsFault, true)
		r.dlqFault = injectProduceFault(t, env, r.dlq, c.dlqFault, false)
	}
	// One partition, whatever the broker's num.partitions: the host's
	// group owns it all, and its committed offset is the one to read.
	createTopic(t, env.Brokers, r.topic, 1)
	// The message, and where it landed.
	addrs, _ := kafka.ParseBrokers(env.Brokers)
	p, err := sarama.NewSyncProducer(addrs, kafka.Config("tests"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if r.partition, r.offset, err = p.SendMessage(kafka.ProducerMessage(r.topic, []byte("k"), []byte(r.payload), nil)); err != nil {
		t.Fatal(err)
	}
	return r
}

// drive runs the case with a host that start starts and the returned func
// stops, and observes the outcome.
func (r *brokerRun) drive(f contractFeatures, start func() (stop func())) observation {
	t := r.t
	t.Helper()
	stop := start()
	defer func() { stop() }()
	if r.c.restart {
		if f.DurableAttempts {
			r.waitCommittedAttempts(1)
		} else {
			r.waitInvocations(1)
		}
		stop()
		r.beforeRestart = len(readLog(t, r.logPath))
		stop = start()
	}
	for _, f := range []*produceFault{r.eventsFault, r.dlqFault} {
		if f == nil || f.mode != refuseUntilReleased {
			continue
		}
		f.holdsCommit(r, 3)
		f.release(t)
	}
	deadline := time.Now().Add(settle)
	for r.committed() <= r.offset {
		if time.Now().After(deadline) {
			t.Fatalf("offset %d not committed within %v; invocations %d", r.offset, settle, len(readLog(t, r.logPath)))
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	stop = func() {}
	return r.observe()
}

func (r *brokerRun) committed() int64 {
	return committed(r.t, mustBrokers(r.t, r.env), r.group, r.topic, r.partition)
}

// waitCommittedAttempts waits until the commit metadata records n failed
// attempts of the message.
func (r *brokerRun) waitCommittedAttempts(n int) {
	r.t.Helper()
	client, err := sarama.NewClient(mustBrokers(r.t, r.env), kafka.Config("tests"))
	if err != nil {
		r.t.Fatal(err)
	}
	defer client.Close()
	deadline := time.Now().Add(settle)
	for {
		c, err := kafka.FetchCommitted(client, r.group, r.topic, []int32{r.partition})
		if err == nil && strings.Contains(c[r.partition].Metadata, fmt.Sprintf(";%d:%d:", r.offset, n)) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no commit recording %d failed attempt(s) within %v (metadata %q, err %v)", n, settle, c[r.partition].Metadata, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitInvocations waits until n invocations have returned.
func (r *brokerRun) waitInvocations(n int) {
	r.t.Helper()
	deadline := time.Now().Add(settle)
	for {
		ended := 0
		for _, rec := range readLogAll(r.t, r.logPath) {
			if rec.Phase == "end" {
				ended++
			}
		}
		if ended >= n {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d of %d invocations returned within %v", ended, n, settle)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *brokerRun) observe() observation {
	o := observation{invocations: len(readLog(r.t, r.logPath)), outcome: "ack", beforeRestart: r.beforeRestart}
	if dls := readTopic(r.t, r.env, r.dlq); len(dls) > 0 {
		if len(dls) != 1 {
			r.t.Fatalf("%d dead letters, want at most one", len(dls))
		}
		h := kafka.Headers(dls[0].Headers)
		o.outcome, o.reason, o.failure = "dead-letter", h[delivery.HeaderReason], h[delivery.HeaderFailure]
		o.attempts, o.exitCode = h[delivery.HeaderAttempts], h[delivery.HeaderExitCode]
		if string(dls[0].Value) != r.payload || string(dls[0].Key) != "k" {
			r.t.Fatalf("dead letter %q/%q, want the message k/%q", dls[0].Key, dls[0].Value, r.payload)
		}
	}
	for _, m := range readTopic(r.t, r.env, r.events) {
		h := kafka.Headers(m.Headers)
		o.events = append(o.events, observedEvent{topic: m.Topic, key: string(m.Key), value: string(m.Value), from: h["from"]})
	}
	return o
}

func mustBrokers(t *testing.T, env *testenv.Env) []string {
	t.Helper()
	b, err := kafka.ParseBrokers(env.Brokers)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readTopic returns every record of topic up to its end now; none when it
// does not exist.
func readTopic(t *testing.T, env *testenv.Env, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := kafka.Config("tests")
	cfg.Metadata.AllowAutoTopicCreation = false
	client, err := sarama.NewClient(mustBrokers(t, env), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		total += int(end - start)
	}
	if total == 0 {
		return nil
	}
	return consumeAll(t, env.Brokers, topic, total, settle)
}

// produceFault makes the broker refuse produce requests to one topic. On
// the embedded broker a control hook answers them with an error code; on
// another Kafka the topic is created with a max.message.bytes no record
// fits, so the broker itself refuses with MESSAGE_TOO_LARGE, until the
// setting is removed. A refusal that passes by itself (a retryable error
// such as NOT_ENOUGH_REPLICAS) has no such equivalent on a one-node Kafka
// (min.insync.replicas above the replication factor does not refuse
// there): those cases are the embedded broker's only.
type produceFault struct {
	mode     faultMode
	on       atomic.Bool
	refusals atomic.Int64 // embedded broker only

	// Another Kafka: how to release the fault.
	admin sarama.ClusterAdmin
	topic string
}

// retryable asks for a refusal the host should retry (the events case)
// rather than one it must hold the message for (the dead-letter case).
func injectProduceFault(t *testing.T, env *testenv.Env, topic string, mode faultMode, retryable bool) *produceFault {
	if mode == noFault {
		return nil
	}
	f := &produceFault{mode: mode, topic: topic}
	f.on.Store(true)
	if env.Embedded == nil {
		if mode == refuseUntilReleased && retryable {
			t.Skip("a refusal that passes by itself needs the embedded broker's fault injection: a one-node Kafka has no equivalent")
		}
		f.refuseOnKafka(t, env)
		return f
	}
	t.Cleanup(func() { f.release(t) })
	code := kerr.NotEnoughReplicas.Code // retryable
	if mode == refuseForGood {
		code = kerr.MessageTooLarge.Code
	}
	c := env.Embedded.Cluster()
	// Produce v13 (Kafka 4) names topics by id, not name: create the
	// topic now to learn its id (an error means it exists already).
	_ = c.CreateTopic(topic, broker.DefaultPartitions, nil)
	info := c.TopicInfo(topic)
	if info == nil {
		t.Fatalf("topic %s missing after creating it", topic)
	}
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		if !f.on.Load() {
			c.DropControl() // only possible from inside a control function
			return nil, nil, false
		}
		c.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		hit := false
		for _, tp := range req.Topics {
			hit = hit || tp.Topic == topic || tp.TopicID == info.TopicID
		}
		if !hit {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = tp.Topic, tp.TopicID
			for _, p := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		f.refusals.Add(1)
		return resp, nil, true
	})
	return f
}

// refuseOnKafka creates the fault's topic with the setting that makes a
// real broker refuse writes to it.
func (f *produceFault) refuseOnKafka(t *testing.T, env *testenv.Env) {
	admin, err := sarama.NewClusterAdmin(mustBrokers(t, env), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	f.admin = admin
	small := "16"
	if err := admin.CreateTopic(f.topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"max.message.bytes": &small}}, false); err != nil {
		t.Fatalf("create %s with max.message.bytes=%s: %v", f.topic, small, err)
	}
}

func (f *produceFault) release(t *testing.T) {
	if !f.on.CompareAndSwap(true, false) || f.admin == nil {
		return
	}
	if err := f.admin.AlterConfig(sarama.TopicResource, f.topic, map[string]*string{}, false); err != nil { // back to the broker's default
		t.Errorf("release the fault on %s: %v", f.topic, err)
	}
}

// holdsCommit checks that the host does not commit the message while the
// broker refuses: on the embedded broker, through n refused requests; on
// another Kafka, which does not count them, for a few of the host's
// publish backoffs after the handler returned.
func (f *produceFault) holdsCommit(r *brokerRun, n int64) {
	t := r.t
	t.Helper()
	check := func() {
		if got := r.committed(); got > r.offset {
			t.Fatalf("committed %d while the broker refused the publish for offset %d", got, r.offset)
		}
	}
	if f.admin != nil {
		r.waitInvocations(1)
		for end := time.Now().Add(delivery.Backoff(1) + delivery.Backoff(2) + delivery.Backoff(3)); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			check()
		}
		return
	}
	deadline := time.Now().Add(settle)
	for f.refusals.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d refused produce requests within %v, want %d", f.refusals.Load(), settle, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	check()
}

// restarterHost: the restarter engine with the test function's binary.
type restarterHost struct{}

func (restarterHost) name() string { return "restarter" }
func (restarterHost) features() contractFeatures {
	return contractFeatures{Broker: true, ProcessIsolation: true, DurableAttempts: true, ObservesExit: true}
}

func (h restarterHost) run(t *testing.T, c contractCase) observation {
	return h.drive(t, newBrokerRun(t, c))
}

func (restarterHost) drive(t *testing.T, r *brokerRun) observation {
	c := r.c
	bin := build(t, "tests/testfn")
	env := []string{"TESTFN_LOG=" + r.logPath}
	if c.json {
		env = append(env, "TESTFN_JSON=1")
	}
	spec := restarter.Spec{Name: fmt.Sprintf("contract-%d", time.Now().UnixNano()), Binary: bin, Topic: r.topic, Group: r.group, Pool: 2,
		MaxAttempts: c.maxAttempts, Timeout: restarter.Duration(c.timeout), Env: env}
	return r.drive(restarterHost{}.features(), func() func() {
		e, err := restarter.New(restarter.Config{Brokers: mustBrokers(t, r.env), CommitInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Deploy(context.Background(), spec); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		return func() {
			once.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := e.Close(ctx); err != nil {
					t.Errorf("close the engine: %v", err)
				}
			})
		}
	})
}

// standaloneHost: the test function's binary run standalone, once per
// message, in a loop, as a process manager would.
type standaloneHost struct{}

func (standaloneHost) name() string { return "standalone" }
func (standaloneHost) features() contractFeatures {
	return contractFeatures{Broker: true, ProcessIsolation: true, DurableAttempts: true}
}

func (standaloneHost) run(t *testing.T, c contractCase) observation {
	r := newBrokerRun(t, c)
	bin := build(t, "tests/testfn")
	env := append(testfnEnv(r.env.Brokers, r.topic, r.logPath),
		fmt.Sprintf("FN_MAX_ATTEMPTS=%d", c.maxAttempts), "FN_TIMEOUT="+c.timeout.String())
	if c.json {
		env = append(env, "TESTFN_JSON=1")
	}
	return r.drive(standaloneHost{}.features(), func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				cmd := exec.Command(bin)
				cmd.Env = append(os.Environ(), env...)
				var stderr strings.Builder
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Error(err)
					return
				}
				exited := make(chan struct{})
				go func() {
					select {
					case <-ctx.Done():
						cmd.Process.Signal(syscall.SIGTERM)
					case <-exited:
					}
				}()
				err := cmd.Wait()
				close(exited)
				var ee *exec.ExitError
				if err != nil && !errors.As(err, &ee) {
					t.Error(err)
					return
				}
				// 0 handled, 1 attempt failed, 3 broker trouble, 4 stopped
				// while waiting; 2 is a bad setup and a crash of the handler
				// ends the process any other way.
				if code := cmd.ProcessState.ExitCode(); code == 2 {
					t.Errorf("testfn exit 2: %s", stderr.String())
					return
				}
			}
		}()
		var once sync.Once
		return func() {
			once.Do(func() {
				cancel()
				select {
				case <-done:
				case <-time.After(runTimeout):
					t.Errorf("standalone runs did not stop within %v", runTimeout)
				}
			})
		}
	})
}

// serveHost: the handler hosted in this process by fn.Serve.
type serveHost struct{}

func (serveHost) name() string               { return "serve" }
func (serveHost) features() contractFeatures { return contractFeatures{Broker: true} }

func (serveHost) run(t *testing.T, c contractCase) observation {
	r := newBrokerRun(t, c)
	opts := []fn.Option{fn.MaxAttempts(c.maxAttempts), fn.Timeout(c.timeout), fn.Group(r.group)}
	var f *fn.Func
	if c.json {
		f = fn.New("serve", r.topic, testfn.JSONHandler(r.logPath), opts...)
	} else {
		f = fn.New("serve", r.topic, testfn.Handler(r.logPath), opts...)
	}
	return r.drive(serveHost{}.features(), func() func() {
		b, err := broker.NewKafka(context.Background(), broker.KafkaConfig{Brokers: r.env.Brokers})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- fn.Serve(ctx, b, fn.ServeFuncs(f), fn.ServeLogger(testLogger(t))) }()
		var once sync.Once
		return func() {
			once.Do(func() {
				cancel()
				select {
				case err := <-served:
					if err != nil {
						t.Errorf("Serve: %v", err)
					}
				case <-time.After(runTimeout):
					t.Errorf("Serve did not return within %v of cancel", runTimeout)
				}
				b.Close()
			})
		}
	})
}

// fntestHost: fntest, with no broker, its attempts driven by the test as
// the restarter would drive them.
type fntestHost struct{}

func (fntestHost) name() string               { return "fntest" }
func (fntestHost) features() contractFeatures { return contractFeatures{} }

func (fntestHost) run(t *testing.T, c contractCase) observation {
	logPath := filepath.Join(t.TempDir(), "log")
	payload := c.payload
	if strings.Contains(payload, "%s") {
		payload = fmt.Sprintf(payload, "events")
	}
	opts := []fn.Option{fn.MaxAttempts(c.maxAttempts), fn.Timeout(c.timeout)}
	var f *fn.Func
	if c.json {
		f = fn.New("fntest", "t", testfn.JSONHandler(logPath), opts...)
	} else {
		f = fn.New("fntest", "t", testfn.Handler(logPath), opts...)
	}
	var o observation
	for attempt := 1; ; attempt++ {
		m := fntest.Message("t", []byte(payload), nil)
		m.Key, m.Attempt = []byte("k"), attempt
		r := fntest.Invoke(f, m)
		switch r.Outcome {
		case fntest.Retry:
			continue
		case fntest.Ack:
			o.outcome = "ack"
			for _, e := range r.Events {
				o.events = append(o.events, observedEvent{topic: e.Topic, key: string(e.Key), value: string(e.Value), from: e.Headers["from"]})
			}
		case fntest.DeadLetter:
			o.outcome, o.failure = "dead-letter", r.Failure
			o.reason, o.attempts = string(delivery.ReasonFor(delivery.Failure(r.Failure))), fmt.Sprint(attempt)
		}
		o.invocations = len(readLog(t, logPath))
		return o
	}
}

// testLogger writes slog records to the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// A standalone run records its attempt before it calls the handler; when
// its process dies, the next member of the group counts that attempt as
// failed, whichever host it is: here the restarter takes over a message
// whose last allowed attempt died in a standalone run, and dead-letters
// it without running it again.
func TestRestarterCountsAStandaloneRunThatDied(t *testing.T) {
	r := newBrokerRun(t, contractCase{payload: "ok", maxAttempts: 2})
	client, err := sarama.NewClient(mustBrokers(t, r.env), kafka.Config("tests"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// What a standalone run leaves when its second attempt's process dies.
	meta := attempts.Encode([]attempts.Entry{{Offset: r.offset, Failed: 1, Last: time.Now(), Running: true}}, nil)
	if err := kafka.CommitOffsets(client, r.group, -1, "", []kafka.Commit{{Topic: r.topic, Partition: r.partition, Offset: r.offset, Metadata: meta}}); err != nil {
		t.Fatal(err)
	}
	o := restarterHost{}.drive(t, r)
	wantOutcome(t, o, "dead-letter", "exhausted", "crash", 2, 0)
}
