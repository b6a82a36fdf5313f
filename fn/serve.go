package fn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/microfn/microfn/internal/delivery"
)

// Broker is where Serve takes messages from and sends records to.
// broker.Open returns one; its methods are for Serve, not for handlers.
type Broker interface {
	// Consume calls handle for each message of topic, as a member of the
	// consumer group, until ctx ends; then it waits for the running
	// calls and returns nil. A message whose handle returns nil is
	// committed; one whose handle returns an error is delivered again.
	// Calls for different partitions may run at the same time.
	Consume(ctx context.Context, group, topic string, handle func(context.Context, *Message) error) error
	// Send stores one record and returns once the broker has it. An
	// error wrapping one marked with Permanent means the broker refused
	// the record for good (too large, invalid topic, not authorised).
	Send(ctx context.Context, r Record) error
}

// ServeOption configures Serve.
type ServeOption func(*serveCfg)

type serveCfg struct {
	log   *slog.Logger
	funcs []*Func
}

// ServeLogger sets the logger for outcomes and broker errors. Default:
// slog.Default().
func ServeLogger(l *slog.Logger) ServeOption { return func(c *serveCfg) { c.log = l } }

// ServeFuncs chooses the subscribers to host. Default: every subscriber
// declared with Subscribe.
func ServeFuncs(funcs ...*Func) ServeOption { return func(c *serveCfg) { c.funcs = funcs } }

// Serve hosts subscribers inside a long-running process until ctx is
// cancelled, then returns nil once in-flight invocations have finished.
//
// The semantics are a function process's: each message gets a fresh
// invocation, on its own goroutine; a failed attempt is retried after a
// backoff up to the subscriber's MaxAttempts, then dead-lettered;
// permanent failures and undecodable payloads are dead-lettered at once;
// events are published before the commit, and published again (not the
// handler run again) when the broker does not take them at once. What
// differs: retries happen in place, so a failing message holds back the
// later messages of its partition; attempts are counted in memory, so a
// message in its retries when the service restarts starts again at its
// first attempt; and there is no process isolation: a handler that
// ignores its context after its timeout keeps its goroutine, and a crash
// takes the service down. A message being retried or published when ctx
// ends is not committed and is delivered again.
func Serve(ctx context.Context, b Broker, opts ...ServeOption) error {
	cfg := serveCfg{log: slog.Default(), funcs: declared()}
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.funcs) == 0 {
		return errors.New("fn.Serve: no subscribers: declare them with fn.Subscribe or pass ServeFuncs")
	}
	if err := declarationErrors(cfg.funcs); err != nil {
		return fmt.Errorf("fn.Serve: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		failed  error
	)
	for _, f := range cfg.funcs {
		s := &server{f: f, b: b, log: cfg.log.With("subscriber", f.name, "topic", f.topic)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Consume(ctx, f.spec.group, f.topic, s.handle); err != nil {
				errOnce.Do(func() { failed = fmt.Errorf("fn.Serve: consume %s for %q: %w", f.topic, f.name, err) })
				cancel() // one subscriber failing stops them all
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
	return failed
}

type server struct {
	f   *Func
	b   Broker
	log *slog.Logger
}

// errStopping tells Consume that a message was not finished before Serve
// stopped: it is delivered again.
var errStopping = errors.New("fn.Serve: stopping before the message was finished")

// handle runs one message to its end: acknowledged, dead-lettered, or,
// when ctx ends first, left for redelivery. Its attempts run in place,
// one after the other.
func (s *server) handle(ctx context.Context, m *Message) error {
	m.Topic = s.f.topic
	for attempt := 1; ; attempt++ {
		m.Attempt = attempt
		r := s.f.invoke(context.WithoutCancel(ctx), m)
		out, err := delivery.Carry(ctx, s, s.f.policy(s.log), delivery.Attempt{Message: deliveryMessage(m), Number: attempt, Result: r})
		if err != nil {
			return fmt.Errorf("%w: %v", errStopping, err)
		}
		if out.Action != delivery.Retry {
			return nil
		}
	}
}

// Finish leaves the commit to Consume, which commits a message whose
// handle returned nil.
func (s *server) Finish(context.Context) error { return nil }

// Retry waits out the backoff in place: the next attempt runs when Retry
// returns.
func (s *server) Retry(ctx context.Context, _ int, wait time.Duration) error {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return errStopping
	}
}

// Send is a delivery.SendFunc over the broker's one-record Send.
func (s *server) Send(ctx context.Context, records []delivery.Record) ([]delivery.Record, error) {
	for i, r := range records {
		if err := s.b.Send(context.WithoutCancel(ctx), Record(r)); err != nil {
			if isPermanent(err) {
				err = delivery.Refused(err)
			}
			return records[i:], fmt.Errorf("publish to %s: %w", r.Topic, err)
		}
	}
	return nil, nil
}

func deliveryMessage(m *Message) delivery.Message {
	return delivery.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: m.Headers}
}
