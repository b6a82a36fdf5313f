package restarter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/fnproto"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/kconn"
	"github.com/microfn/microfn/internal/pipe"
	"github.com/microfn/microfn/internal/runner"
)

// maxBuffered bounds the messages a deployment holds that are not yet in a
// process: past it, fetching waits.
const maxBuffered = 1024

// deployment is one deployment at work. It is the consumer-group member
// (Setup, Cleanup and ConsumeClaim feed the partitions' messages in), and
// it composes the parts that do the rest: lanes order the messages, the
// pool keeps warm processes, dispatch hands each runnable message to a
// process, handle carries out what package delivery decides about the
// attempt, and the committer commits each partition's watermark.
type deployment struct {
	e    *Engine
	spec Spec // as deployed; only the pool's size changes later (pool.resize)
	log  *slog.Logger
	logw io.Writer // the functions' output
	proc runner.Config
	// policy carries out attempts: the deployment's dead-letter topic and
	// attempts.
	policy delivery.Policy

	// client is the consumer's. Commits and offset reads go through the
	// engine's client instead (offsetClient): on the consumer's
	// connection they would queue behind the fetch long-poll.
	client sarama.Client
	group  sarama.ConsumerGroup
	done   chan struct{} // closed when consuming has stopped and committed

	buffered chan struct{} // a slot per held message
	lanes    *lanes
	pool     *pool
	commits  *committer

	mu    sync.Mutex
	parts map[int32]*partState
	sess  sarama.ConsumerGroupSession

	processed, failed, deadLettered atomic.Int64
	inflight                        atomic.Int64

	holes holeWatch
}

func newDeployment(e *Engine, s Spec) (*deployment, error) {
	d := &deployment{e: e, spec: s, parts: map[int32]*partState{}, buffered: make(chan struct{}, maxBuffered),
		done: make(chan struct{}), lanes: newLanes()}
	d.log = e.log.With("deployment", s.Name)
	d.policy = delivery.Policy{Function: s.Name, DeadLetter: s.DeadLetter, MaxAttempts: s.MaxAttempts, Log: d.log}
	d.logw = io.Discard
	if e.cfg.LogDir != "" {
		f, err := os.OpenFile(e.cfg.LogDir+"/"+s.Name+".log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("deployment %s: log file: %w", s.Name, err)
		}
		d.logw = f
	}
	env := kconn.WithoutEnv(os.Environ())
	if s.KafkaEnv {
		env = append(env, e.cfg.FunctionKafkaEnv...)
	}
	env = append(env, s.Env...)
	if s.MemoryLimit > 0 {
		// Go functions collect garbage before they reach the limit.
		env = append(env, "GOMEMLIMIT="+strconv.FormatInt(s.MemoryLimit*9/10, 10))
	}
	if s.Subscriber != "" {
		env = append(env, fnproto.EnvSubscriber+"="+s.Subscriber)
	}
	if !s.Plain {
		env = withDefaults(env, runner.FunctionEnv)
	}
	d.proc = runner.Config{Binary: s.Binary, Args: s.Args, Env: env, Plain: s.Plain, MemoryLimit: s.MemoryLimit,
		Log: d.logw, KillGrace: KillGrace}

	client, err := e.cfg.Kafka.NewClient(e.cfg.Brokers, consumerConfig(e.cfg.Kafka, s))
	if err != nil {
		d.closeLog()
		return nil, fmt.Errorf("deployment %s: %w", s.Name, err)
	}
	group, err := sarama.NewConsumerGroupFromClient(s.Group, client)
	if err != nil {
		client.Close()
		d.closeLog()
		return nil, fmt.Errorf("deployment %s: consumer group %s: %w", s.Name, s.Group, err)
	}
	d.client, d.group = client, group
	d.pool = newPool(poolSize{min: s.MinPool, max: s.MaxPool, quiet: time.Duration(s.ScaleDownAfter)}, s.Plain, func() (process, error) { return runner.Start(d.proc) }, realClock{}, d.log)
	d.commits = newCommitter(e.cfg.CommitInterval, func(gen generation, cs []kafka.Commit) error {
		err := kafka.CommitOffsets(d.offsetClient(), d.spec.Group, gen.id, gen.member, cs)
		if err == nil {
			d.holes.noteCommitted(cs)
		}
		return err
	}, d.log)
	return d, nil
}

// Idle cost. A deployment's consumer sends a fetch and a heartbeat to the
// broker over and over while nothing is published, and with hundreds of
// deployments on one daemon those requests are what idleness costs, on
// both sides of the connection. A long poll returns as soon as a record
// arrives, so a long fetchWait costs no latency; it does delay what
// queues behind the fetch on the consumer's connection (sarama sends the
// group's heartbeats and its leave there too), which is why commits and
// offset reads go through the engine's client, and why the session
// timeout leaves room for a heartbeat that waited out a whole fetch.
const (
	fetchWait         = 5 * time.Second
	heartbeatInterval = 3 * time.Second // Kafka's default
	sessionTimeout    = 15 * time.Second
)

// consumerConfig is the sarama configuration of a deployment's consumer.
func consumerConfig(conn *kafka.Conn, s Spec) *sarama.Config {
	cfg := conn.Config("microfn-" + s.Name)
	cfg.Consumer.MaxWaitTime = fetchWait
	cfg.Consumer.Group.Heartbeat.Interval = heartbeatInterval
	cfg.Consumer.Group.Session.Timeout = sessionTimeout
	cfg.Consumer.Group.Rebalance.Timeout = time.Duration(s.Timeout) + KillGrace + 10*time.Second
	cfg.ChannelBufferSize = 256
	return cfg
}

// offsetClient is the client for the group's commits and offset reads:
// the engine's, shared by every deployment (they are short requests).
func (d *deployment) offsetClient() sarama.Client { return d.e.client }

// discard releases a deployment that never ran.
func (d *deployment) discard() {
	d.group.Close()
	d.client.Close()
	d.closeLog()
}

func (d *deployment) closeLog() {
	if c, ok := d.logw.(io.Closer); ok {
		c.Close()
	}
}

// run consumes until ctx ends, then commits and leaves the group.
func (d *deployment) run(ctx context.Context) {
	defer close(d.done)
	go d.pool.run(ctx)
	go d.dispatch()
	go func() {
		for err := range d.group.Errors() {
			d.log.Warn("consumer group", "err", err)
		}
	}()
	commitStop := make(chan struct{})
	go d.commits.run(commitStop, d.current)
	for ctx.Err() == nil {
		if err := d.group.Consume(ctx, []string{d.spec.Topic}, d); err != nil {
			d.log.Error("consume", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	close(commitStop)
	d.lanes.close()
	if err := d.group.Close(); err != nil {
		d.log.Warn("leave group", "err", err)
	}
	d.pool.stop()
	d.client.Close()
	d.closeLog()
}

// current is the membership and the partitions it holds, for the
// committer.
func (d *deployment) current() (generation, []*partState, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sess == nil {
		return generation{}, nil, false
	}
	parts := make([]*partState, 0, len(d.parts))
	for _, ps := range d.parts {
		parts = append(parts, ps)
	}
	return generationOf(d.sess), parts, true
}

func generationOf(sess sarama.ConsumerGroupSession) generation {
	return generation{id: sess.GenerationID(), member: sess.MemberID()}
}

// Setup starts a membership: it checks the claimed partitions for holes
// before any is consumed.
func (d *deployment) Setup(sess sarama.ConsumerGroupSession) error {
	d.mu.Lock()
	d.sess = sess
	d.mu.Unlock()
	d.log.Info("partitions assigned", "generation", sess.GenerationID(), "partitions", sess.Claims()[d.spec.Topic])
	d.checkHoles(sess)
	return nil
}

// Cleanup forgets the membership; each claim has committed what it
// finished.
func (d *deployment) Cleanup(sess sarama.ConsumerGroupSession) error {
	d.mu.Lock()
	if d.sess == sess {
		d.sess = nil
	}
	d.mu.Unlock()
	return nil
}

// ConsumeClaim feeds one partition's messages to the lanes. When the
// partition is revoked (or the deployment stops) it stops taking work,
// waits for the partition's messages in processes to finish, commits and
// returns: no message is ever handled by two members at once.
func (d *deployment) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	committed, err := kafka.FetchCommitted(d.offsetClient(), d.spec.Group, claim.Topic(), []int32{claim.Partition()})
	if err != nil {
		return fmt.Errorf("read committed offset of %s/%d: %w", claim.Topic(), claim.Partition(), err)
	}
	ps := newPartState(claim.Topic(), claim.Partition(), committed[claim.Partition()], claim.InitialOffset(), claim.HighWaterMarkOffset)
	d.mu.Lock()
	d.parts[claim.Partition()] = ps
	d.mu.Unlock()
	defer func() {
		ps.markRevoked()
		d.pool.wake() // a dispatch waiting for a process for this partition gives up
		ps.waitIdle(time.Duration(d.spec.Timeout) + KillGrace + time.Second)
		d.commits.commit(generationOf(sess), ps)
		d.mu.Lock()
		if d.parts[claim.Partition()] == ps {
			delete(d.parts, claim.Partition())
		}
		d.mu.Unlock()
	}()
	for {
		select {
		case km, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			select {
			case d.buffered <- struct{}{}:
			case <-sess.Context().Done():
				return nil
			}
			prev, finished := ps.add(km.Offset)
			if finished {
				<-d.buffered // finished by the partition's previous owner
				continue
			}
			next := delivery.Resume(prev, d.spec.MaxAttempts)
			it := &item{msg: km, ps: ps, lane: laneOf(d.spec.Order, km.Partition, km.Key), attempt: next.Next, crashed: next.Crashed}
			if wait := time.Until(next.At); wait > 0 && next.Crashed == nil {
				d.lanes.addAfter(it, wait)
			} else {
				d.lanes.add(it)
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// finish releases it's lane (the next message of the lane may run) and
// its buffer slot.
func (d *deployment) finish(it *item) {
	d.lanes.done(it)
	<-d.buffered
}

// dispatch hands runnable messages to warm processes, one process each.
func (d *deployment) dispatch() {
	for {
		it, ok := d.lanes.next()
		if !ok {
			return
		}
		if it.ps.isRevoked() {
			d.finish(it)
			continue
		}
		var p process
		switch {
		case it.crashed != nil:
			// Nothing to run: handle dead-letters it.
		case !d.spec.Plain:
			if p = d.pool.take(it.ps.isRevoked, d.lanes.runnable()); p == nil {
				d.finish(it) // revoked or stopping while waiting for a process
				continue
			}
		default:
			if !d.pool.acquire(it.ps.isRevoked, d.lanes.runnable()) {
				d.finish(it)
				continue
			}
		}
		if !it.ps.begin() {
			if p != nil {
				go p.Stop()
			}
			if it.crashed == nil {
				d.pool.release()
			}
			d.finish(it)
			continue
		}
		d.inflight.Add(1)
		go d.handle(it, p)
	}
}

// handle runs one attempt of it (in p, or in a plain process it starts)
// and carries out what delivery decides, with it as the delivery.Host.
func (d *deployment) handle(it *item, p process) {
	defer d.inflight.Add(-1)
	if it.crashed == nil {
		// Its place in the pool is held until its outcome is recorded,
		// so no more messages are in flight than the pool's size.
		defer d.pool.release()
	}
	// The message counts as in flight until its outcome is recorded (done,
	// failed attempt, or dead letter): a revoke waits for that before its
	// final commit, or a finished message would be redelivered.
	defer it.ps.end()
	m := d.pipeMessage(it)
	a := delivery.Attempt{Message: deliveryMessage(it.msg), Number: it.attempt}
	switch {
	case it.crashed != nil:
		a.Result = *it.crashed
	case d.spec.Plain:
		_, a.Result = runner.RunPlain(d.proc, m)
	default:
		p.SetLabel(runner.Label(p.Pid(), m))
		a.Result = p.Run(m)
		a.Exit = p.Wait // the process's output, for a dead letter, is complete once it has exited
	}
	out, err := delivery.Carry(it.ps.ctx, itemHost{d, it}, d.policy, a)
	if !out.Result.OK() {
		d.failed.Add(1)
	}
	switch {
	case err != nil:
		// The partition went elsewhere first: the message is not
		// committed, and its next owner runs it again.
		d.finish(it)
	case out.Action == delivery.Ack:
		d.processed.Add(1)
		d.finish(it)
	case out.Action == delivery.DeadLetter:
		d.deadLettered.Add(1)
		d.finish(it)
	}
	// A retried message keeps its lane and buffer slot: Retry queued it.
}

// itemHost is the delivery.Host of a message in the restarter.
type itemHost struct {
	d  *deployment
	it *item
}

func (h itemHost) Send(ctx context.Context, records []delivery.Record) ([]delivery.Record, error) {
	return h.d.e.send(ctx, records)
}

// Finish marks the message finished; the committer commits the
// partition's watermark once it passes it.
func (h itemHost) Finish(context.Context) error {
	h.it.ps.done(h.it.msg.Offset)
	h.d.commits.soon()
	return nil
}

// Retry records the failed attempts for the next commit (the count must
// outlive a crash of the restarter) and queues the message again after
// wait, in its lane.
func (h itemHost) Retry(_ context.Context, failed int, wait time.Duration) error {
	h.it.ps.fail(h.it.msg.Offset, failed)
	h.d.commits.soon()
	h.it.attempt = failed + 1
	h.d.lanes.retryAfter(h.it, wait)
	return nil
}

// pipeMessage is it's attempt as a function process gets it, with its
// deadline from now.
func (d *deployment) pipeMessage(it *item) *pipe.Message {
	km := it.msg
	m := &pipe.Message{Topic: km.Topic, Partition: km.Partition, Offset: km.Offset, Key: km.Key, Value: km.Value,
		Timestamp: km.Timestamp, Attempt: it.attempt, Deadline: time.Now().Add(time.Duration(d.spec.Timeout))}
	if len(km.Headers) > 0 {
		m.Headers = make([]pipe.Header, 0, len(km.Headers))
		for _, h := range km.Headers {
			m.Headers = append(m.Headers, pipe.Header{Key: string(h.Key), Value: string(h.Value)})
		}
	}
	return m
}

func deliveryMessage(km *sarama.ConsumerMessage) delivery.Message {
	return delivery.Message{Topic: km.Topic, Partition: km.Partition, Offset: km.Offset, Key: km.Key,
		Value: km.Value, Headers: kafka.Headers(km.Headers)}
}

func (d *deployment) status() Status {
	spec := d.spec
	sz := d.pool.sizing()
	spec.MinPool, spec.MaxPool, spec.Pool = sz.min, sz.max, 0
	if sz.min == sz.max {
		spec.Pool = sz.min
	}
	s := Status{Name: spec.Name, Topic: spec.Topic, Group: spec.Group, Pool: sz.size,
		InFlight: int(d.inflight.Load()), Processed: d.processed.Load(), Failed: d.failed.Load(),
		DeadLettered: d.deadLettered.Load(), Scaled: sz.change, ScaledAt: sz.changedAt, ColdStarts: sz.coldStarts, Spec: spec}
	s.Warm, s.Restarts, s.State, s.Reason = d.pool.state()
	d.holes.apply(&s)
	d.mu.Lock()
	for _, ps := range d.parts {
		s.Lag += ps.lag()
	}
	d.mu.Unlock()
	return s
}

// withDefaults adds the K=V entries of defaults whose K env does not set.
func withDefaults(env, defaults []string) []string {
	for _, kv := range defaults {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") }) {
			env = append(env, kv)
		}
	}
	return env
}
