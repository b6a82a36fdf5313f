package restarter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/fn"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/pipe"
)

// commitLinger is how long a moved watermark waits for others to share
// its commit.
const commitLinger = 2 * time.Millisecond

// maxBuffered bounds the messages a deployment holds that are not yet in a
// process: past it, fetching waits.
const maxBuffered = 1024

// item is one message on its way through a deployment.
type item struct {
	msg     *sarama.ConsumerMessage
	ps      *partState
	lane    string // ordering lane; "" for none
	attempt int
}

type deployment struct {
	e    *Engine
	spec Spec
	log  *slog.Logger
	logw io.Writer // the functions' output
	env  []string  // the function processes' base environment

	client sarama.Client
	// committer has its own connections: a commit on the consumer's would
	// queue behind the fetch long-poll.
	committer  sarama.Client
	commitKick chan struct{}
	commitMu   sync.Mutex
	group      sarama.ConsumerGroup
	cancel     context.CancelFunc
	done       chan struct{} // closed when consuming has stopped and committed

	buffered chan struct{} // a slot per held message

	mu     sync.Mutex
	cond   *sync.Cond
	ready  []*item
	lanes  map[string][]*item // waiting items per busy lane
	busy   map[string]bool
	parts  map[int32]*partState
	sess   sarama.ConsumerGroupSession
	closed bool

	pool *pool

	processed, failed, deadLettered atomic.Int64
	inflight                        atomic.Int64
}

func newDeployment(e *Engine, s Spec) (*deployment, error) {
	d := &deployment{e: e, spec: s, lanes: map[string][]*item{}, busy: map[string]bool{},
		parts: map[int32]*partState{}, buffered: make(chan struct{}, maxBuffered), done: make(chan struct{}),
		commitKick: make(chan struct{}, 1)}
	d.cond = sync.NewCond(&d.mu)
	d.log = e.log.With("deployment", s.Name)
	d.logw = io.Discard
	if e.cfg.LogDir != "" {
		f, err := os.OpenFile(e.cfg.LogDir+"/"+s.Name+".log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("deployment %s: log file: %w", s.Name, err)
		}
		d.logw = f
	}
	d.env = append(os.Environ(), s.Env...)
	if s.MemoryLimit > 0 {
		// Go functions collect garbage before they reach the limit.
		d.env = append(d.env, "GOMEMLIMIT="+strconv.FormatInt(s.MemoryLimit*9/10, 10))
	}
	if s.Subscriber != "" {
		d.env = append(d.env, fn.EnvSubscriber+"="+s.Subscriber)
	}
	cfg := kafka.Config("microfn-" + s.Name)
	cfg.Consumer.Group.Rebalance.Timeout = time.Duration(s.Timeout) + KillGrace + 10*time.Second
	cfg.ChannelBufferSize = 256
	client, err := sarama.NewClient(e.cfg.Brokers, cfg)
	if err != nil {
		d.closeLog()
		return nil, fmt.Errorf("deployment %s: cannot reach Kafka at %v: %w", s.Name, e.cfg.Brokers, err)
	}
	committer, err := sarama.NewClient(e.cfg.Brokers, cfg)
	if err != nil {
		client.Close()
		d.closeLog()
		return nil, fmt.Errorf("deployment %s: cannot reach Kafka at %v: %w", s.Name, e.cfg.Brokers, err)
	}
	group, err := sarama.NewConsumerGroupFromClient(s.Group, client)
	if err != nil {
		client.Close()
		committer.Close()
		d.closeLog()
		return nil, fmt.Errorf("deployment %s: consumer group %s: %w", s.Name, s.Group, err)
	}
	d.client, d.committer, d.group = client, committer, group
	d.pool = newPool(d)
	return d, nil
}

// discard releases a deployment that never ran.
func (d *deployment) discard() {
	d.group.Close()
	d.client.Close()
	d.committer.Close()
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
	go d.commitLoop(commitStop)
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
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cond.Broadcast()
	if err := d.group.Close(); err != nil {
		d.log.Warn("leave group", "err", err)
	}
	d.pool.stop()
	d.client.Close()
	d.committer.Close()
	d.closeLog()
}

// Setup reads the committed metadata (attempt counts) of the claimed
// partitions and starts tracking them.
func (d *deployment) Setup(sess sarama.ConsumerGroupSession) error {
	d.mu.Lock()
	d.sess = sess
	d.mu.Unlock()
	d.log.Info("partitions assigned", "generation", sess.GenerationID(), "partitions", sess.Claims()[d.spec.Topic])
	return nil
}

// Cleanup forgets the session; each claim has committed what it finished.
func (d *deployment) Cleanup(sess sarama.ConsumerGroupSession) error {
	d.mu.Lock()
	if d.sess == sess {
		d.sess = nil
	}
	d.mu.Unlock()
	return nil
}

// ConsumeClaim feeds one partition's messages to the scheduler. When the
// partition is revoked (or the deployment stops) it stops taking work,
// waits for the partition's messages in processes to finish, commits and
// returns: no message is ever handled by two members at once.
func (d *deployment) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	committed, err := kafka.FetchCommitted(d.client, d.spec.Group, claim.Topic(), []int32{claim.Partition()})
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
		d.commitParts(sess, ps)
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
			it := &item{msg: km, ps: ps, lane: d.laneOf(km), attempt: prev.Failed + 1}
			if wait := time.Until(prev.Last.Add(fn.Backoff(prev.Failed))); prev.Failed > 0 && wait > 0 {
				d.enqueueAfter(it, wait, true)
			} else {
				d.enqueue(it, true)
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

func (d *deployment) laneOf(km *sarama.ConsumerMessage) string {
	switch d.spec.Order {
	case OrderPartition:
		return strconv.Itoa(int(km.Partition))
	case OrderKey:
		if km.Key != nil {
			return strconv.Itoa(int(km.Partition)) + "/" + string(km.Key)
		}
	}
	return ""
}

// enqueue makes it runnable, or queues it behind its lane's running
// message. fresh says it is new, not a retry that already holds its lane.
func (d *deployment) enqueue(it *item, fresh bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if fresh && it.lane != "" {
		if d.busy[it.lane] {
			d.lanes[it.lane] = append(d.lanes[it.lane], it)
			return
		}
		d.busy[it.lane] = true
	}
	d.ready = append(d.ready, it)
	d.cond.Signal()
}

// enqueueAfter enqueues it after a backoff, holding its lane meanwhile.
func (d *deployment) enqueueAfter(it *item, wait time.Duration, fresh bool) {
	if fresh && it.lane != "" {
		d.mu.Lock()
		if d.busy[it.lane] {
			d.lanes[it.lane] = append(d.lanes[it.lane], it)
			d.mu.Unlock()
			return
		}
		d.busy[it.lane] = true
		d.mu.Unlock()
	}
	time.AfterFunc(wait, func() { d.enqueue(it, false) })
}

// finish releases it's lane (starting the next message of the lane) and
// its buffer slot.
func (d *deployment) finish(it *item) {
	d.mu.Lock()
	if it.lane != "" {
		if q := d.lanes[it.lane]; len(q) > 0 {
			next := q[0]
			if len(q) == 1 {
				delete(d.lanes, it.lane)
			} else {
				d.lanes[it.lane] = q[1:]
			}
			d.ready = append(d.ready, next)
			d.cond.Signal()
		} else {
			delete(d.busy, it.lane)
		}
	}
	d.mu.Unlock()
	<-d.buffered
}

// dispatch hands runnable messages to warm processes, one process each.
func (d *deployment) dispatch() {
	for {
		d.mu.Lock()
		for len(d.ready) == 0 && !d.closed {
			d.cond.Wait()
		}
		if d.closed {
			d.mu.Unlock()
			return
		}
		it := d.ready[0]
		d.ready = d.ready[1:]
		d.mu.Unlock()

		if it.ps.isRevoked() {
			d.finish(it)
			continue
		}
		var p *proc
		if !d.spec.Plain {
			if p = d.pool.take(it.ps); p == nil {
				d.finish(it) // revoked or stopping while waiting for a process
				continue
			}
		} else if !d.pool.acquirePlain(it.ps) {
			d.finish(it)
			continue
		}
		if !it.ps.begin() {
			if p != nil {
				go p.stop(KillGrace)
			} else {
				d.pool.releasePlain()
			}
			d.finish(it)
			continue
		}
		d.inflight.Add(1)
		go d.handle(it, p)
	}
}

// handle runs it in p (or a plain process) and acts on the outcome.
func (d *deployment) handle(it *item, p *proc) {
	defer d.inflight.Add(-1)
	// The message counts as in flight until its outcome is recorded (done,
	// failed attempt, or dead letter): a revoke waits for that before its
	// final commit, or a finished message would be redelivered.
	defer it.ps.end()
	r, pr := d.invoke(it, p)
	if r.Outcome == fn.OutcomeAck {
		err := d.e.publish(r.Events)
		if err == nil {
			d.processed.Add(1)
			it.ps.done(it.msg.Offset)
			d.kickCommit()
			d.finish(it)
			return
		}
		r = fn.Result{Outcome: fn.OutcomeRetry, Failure: "publish", Err: fmt.Errorf("publish emitted events: %w", err)}
	}
	// Failures only from here: the acknowledged path above stays lean.
	log := d.log.With("partition", it.msg.Partition, "offset", it.msg.Offset, "attempt", it.attempt)
	d.failed.Add(1)
	if r.Outcome == fn.OutcomeRetry && it.attempt < d.spec.MaxAttempts {
		log.Warn("attempt failed; will retry", "failure", r.Failure, "err", r.Err)
		it.ps.fail(it.msg.Offset, it.attempt)
		d.kickCommit() // the attempt count must outlive a crash of the restarter
		wait := fn.Backoff(it.attempt)
		it.attempt++
		d.enqueueAfter(it, wait, false)
		return
	}
	dl := fn.DeadLetterRecord(d.spec.Name, d.spec.DeadLetter, d.fnMessage(it), r)
	if pr != nil {
		<-pr.done // its output, for the stderr tail, is complete once it has exited
		code, sig, _ := pr.exitDescription()
		if sig != "" {
			dl.Headers[fn.HeaderSignal] = sig
		} else if code >= 0 {
			dl.Headers[fn.HeaderExitCode] = strconv.Itoa(code)
		}
		dl.Headers[fn.HeaderStderr] = pr.tail.String()
	}
	// A failed dead-letter publish leaves the message uncommitted; keep
	// trying until it lands or the partition goes elsewhere.
	for backoff := 1; ; backoff++ {
		err := d.e.publish([]fn.Event{dl})
		if err == nil {
			break
		}
		log.Error("dead-letter publish failed; not committing", "dlq", dl.Topic, "err", err)
		time.Sleep(fn.Backoff(backoff))
		if it.ps.isRevoked() {
			d.finish(it)
			return
		}
	}
	log.Warn("dead-lettered", "dlq", dl.Topic, "reason", dl.Headers[fn.HeaderReason], "err", r.Err)
	d.deadLettered.Add(1)
	it.ps.done(it.msg.Offset)
	d.kickCommit()
	d.finish(it)
}

func (d *deployment) fnMessage(it *item) *fn.Message {
	km := it.msg
	return &fn.Message{Topic: km.Topic, Partition: km.Partition, Offset: km.Offset, Key: km.Key,
		Value: km.Value, Headers: kafka.Headers(km.Headers), Timestamp: km.Timestamp, Attempt: it.attempt}
}

// invoke runs one attempt and returns its result and the process.
func (d *deployment) invoke(it *item, p *proc) (fn.Result, *proc) {
	start := time.Now()
	timeout := time.Duration(d.spec.Timeout)
	km := it.msg
	if d.spec.Plain {
		var err error
		if p, err = d.startPlain(it); err != nil {
			d.pool.releasePlain()
			return fn.Result{Outcome: fn.OutcomeRetry, Failure: "start", Err: err}, nil
		}
		defer d.pool.releasePlain()
	}
	label := fmt.Sprintf("pid=%d %s/%d@%d#%d", p.pid, km.Topic, km.Partition, km.Offset, it.attempt)
	p.label.Store(&label)

	// The deadline holds until the process has exited, not just until it
	// reported: one that hangs after its outcome is killed too.
	timer := time.AfterFunc(timeout, func() {
		p.killed.Store(true)
		p.kill(syscall.SIGTERM)
		time.AfterFunc(KillGrace, func() { p.kill(syscall.SIGKILL) })
	})
	go func() {
		<-p.done
		timer.Stop()
	}()

	var out *pipe.Outcome
	late := false // the deadline's SIGTERM came before the outcome
	if !d.spec.Plain {
		pm := &pipe.Message{Topic: km.Topic, Partition: km.Partition, Offset: km.Offset, Key: km.Key,
			Value: km.Value, Timestamp: km.Timestamp, Attempt: it.attempt, Deadline: start.Add(timeout)}
		for _, h := range km.Headers {
			pm.Headers = append(pm.Headers, pipe.Header{Key: string(h.Key), Value: string(h.Value)})
		}
		if _, err := p.in.Write(pipe.EncodeMessage(pm)); err == nil {
			p.in.Close()
			if typ, body, err := pipe.ReadFrame(p.out); err == nil && typ == pipe.TypeOutcome {
				out, _ = pipe.DecodeOutcome(body)
				late = p.killed.Load()
			}
		}
		p.out.Close()
	}
	if out != nil {
		r := fn.Result{Outcome: fn.Outcome(out.Outcome), Failure: out.Failure, Duration: time.Since(start)}
		if out.Error != "" {
			r.Err = errors.New(out.Error)
		}
		for _, e := range out.Events {
			ev := fn.Event{Topic: e.Topic, Key: e.Key, Value: e.Value, Headers: map[string]string{}}
			for _, h := range e.Headers {
				ev.Headers[h.Key] = h.Value
			}
			r.Events = append(r.Events, ev)
		}
		if late && r.Outcome != fn.OutcomeAck {
			// The SIGTERM may have ended what the handler waited for (a
			// child in its process group) before the function's own
			// deadline fired: the attempt overran, whatever it reported.
			r = fn.Result{Outcome: fn.OutcomeRetry, Failure: fn.FailureTimeout, Duration: r.Duration,
				Err: fmt.Errorf("timed out after %v (then reported: %v)", timeout, r.Err)}
		}
		// The process exits by itself; reaping happens off this path.
		return r, p
	}
	<-p.done
	code, sig, text := p.exitDescription()
	r := fn.Result{Outcome: fn.OutcomeRetry, Failure: fn.FailureError, Duration: time.Since(start)}
	switch {
	case p.killed.Load():
		r.Failure, r.Err = fn.FailureTimeout, fmt.Errorf("timed out after %v (%s)", timeout, text)
	case d.spec.Plain && code == 0:
		return fn.Result{Outcome: fn.OutcomeAck, Duration: r.Duration}, p
	case sig != "":
		r.Failure, r.Err = "crash", fmt.Errorf("process %s", text)
	default:
		r.Failure, r.Err = "crash", fmt.Errorf("process ended with %s before reporting an outcome", text)
	}
	return r, p
}

// startPlain starts a plain executable for it: value on stdin, key and
// headers in the environment.
func (d *deployment) startPlain(it *item) (*proc, error) {
	km := it.msg
	env := append([]string{}, d.env...)
	env = append(env, "FN_TOPIC="+km.Topic, "FN_PARTITION="+strconv.Itoa(int(km.Partition)),
		"FN_OFFSET="+strconv.FormatInt(km.Offset, 10), "FN_ATTEMPT="+strconv.Itoa(it.attempt))
	if km.Key != nil {
		env = append(env, "FN_KEY="+string(km.Key))
	}
	for _, h := range km.Headers {
		env = append(env, "FN_HEADER_"+envName(string(h.Key))+"="+string(h.Value))
	}
	return startProc(d.spec, env, d.logw, bytes.NewReader(km.Value))
}

// envName makes a header name usable as an environment variable name:
// upper case, other characters as '_'.
func envName(s string) string {
	b := []byte(strings.ToUpper(s))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// kickCommit asks the commit loop to commit soon.
func (d *deployment) kickCommit() {
	select {
	case d.commitKick <- struct{}{}:
	default:
	}
}

// commitLoop commits the partitions' watermarks as soon as they move, one
// commit at a time (so commits coalesce under load), and on a timer.
// Committing promptly bounds what a crash of the restarter repeats to
// about the messages in flight.
func (d *deployment) commitLoop(stop chan struct{}) {
	t := time.NewTicker(d.e.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-d.commitKick:
			// Linger briefly so messages finishing together share a commit.
			time.Sleep(commitLinger)
		case <-stop:
			return
		}
		d.mu.Lock()
		sess := d.sess
		parts := make([]*partState, 0, len(d.parts))
		for _, ps := range d.parts {
			parts = append(parts, ps)
		}
		d.mu.Unlock()
		if sess != nil {
			d.commitParts(sess, parts...)
		}
	}
}

func (d *deployment) commitParts(sess sarama.ConsumerGroupSession, parts ...*partState) {
	// One commit at a time, its watermarks read under the same lock: a
	// commit read earlier but sent later would move an offset backwards.
	d.commitMu.Lock()
	defer d.commitMu.Unlock()
	var cs []kafka.Commit
	var owners []*partState
	for _, ps := range parts {
		if c, ok := ps.commit(); ok {
			cs = append(cs, c)
			owners = append(owners, ps)
		}
	}
	if len(cs) == 0 {
		return
	}
	if err := kafka.CommitOffsets(d.committer, d.spec.Group, sess.GenerationID(), sess.MemberID(), cs); err != nil {
		d.log.Warn("commit", "err", err)
		return
	}
	for i, ps := range owners {
		ps.committedAt(cs[i])
	}
}

func (d *deployment) status() Status {
	s := Status{Name: d.spec.Name, Topic: d.spec.Topic, Group: d.spec.Group, Pool: d.pool.size(),
		InFlight: int(d.inflight.Load()), Processed: d.processed.Load(), Failed: d.failed.Load(),
		DeadLettered: d.deadLettered.Load(), Spec: d.spec}
	s.Warm, s.Restarts, s.State, s.Reason = d.pool.state()
	d.mu.Lock()
	for _, ps := range d.parts {
		s.Lag += ps.lag()
	}
	d.mu.Unlock()
	return s
}
