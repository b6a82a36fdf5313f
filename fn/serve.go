//go:build !microfn_lean

package fn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/microfn/microfn/internal/kafka"
)

// Broker is what Serve needs from a broker; broker.Open returns one.
type Broker interface {
	message.Publisher
	// Subscriber returns a subscriber in the given consumer group.
	Subscriber(group string) (message.Subscriber, error)
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
// cancelled, then returns nil after in-flight invocations finish.
//
// Each message gets a fresh invocation on its own goroutine, with the same
// semantics as a function process: events published before the commit,
// failed attempts retried with Backoff up to MaxAttempts, permanent and
// undecodable messages dead-lettered at once. Retries happen in place, so
// a failing message holds back later messages of its partition. There is
// no process isolation: a handler that ignores its context after a
// timeout keeps its goroutine, and a crash takes the service down.
func Serve(ctx context.Context, b Broker, opts ...ServeOption) error {
	cfg := serveCfg{log: slog.Default(), funcs: Funcs()}
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.funcs) == 0 {
		return errors.New("fn.Serve: no subscribers: declare them with fn.Subscribe or pass ServeFuncs")
	}
	if err := declarationErrors(cfg.funcs); err != nil {
		return fmt.Errorf("fn.Serve: %w", err)
	}
	var wg sync.WaitGroup
	for _, f := range cfg.funcs {
		sub, err := b.Subscriber(f.spec.group)
		if err != nil {
			return fmt.Errorf("fn.Serve: subscriber for %q: %w", f.name, err)
		}
		defer sub.Close()
		ch, err := sub.Subscribe(ctx, f.topic)
		if err != nil {
			return fmt.Errorf("fn.Serve: subscribe %q to %s: %w", f.name, f.topic, err)
		}
		s := &server{f: f, b: b, log: cfg.log.With("subscriber", f.name, "topic", f.topic)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var inflight sync.WaitGroup
			for msg := range ch {
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					s.handle(ctx, msg)
				}()
			}
			inflight.Wait()
		}()
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

type server struct {
	f   *Func
	b   Broker
	log *slog.Logger
}

// handle runs one message to its end: acked, dead-lettered, or (when ctx
// ends first or the broker refuses) nacked for redelivery.
func (s *server) handle(ctx context.Context, wm *message.Message) {
	m := messageOf(wm)
	m.Topic = s.f.topic
	log := s.log.With("partition", m.Partition, "offset", m.Offset)
	for attempt := 1; ; attempt++ {
		m.Attempt = attempt
		r := s.f.Invoke(context.WithoutCancel(ctx), m)
		var events []Event
		switch {
		case r.Outcome == OutcomeAck:
			events = r.Events
		case r.Outcome == OutcomeRetry && !s.f.Exhausted(attempt):
			log.Warn("attempt failed; will retry", "attempt", attempt, "failure", r.Failure, "err", r.Err)
			select {
			case <-time.After(Backoff(attempt)):
				continue
			case <-ctx.Done():
				wm.Nack()
				return
			}
		default:
			events = []Event{s.f.DeadLetterEvent(m, r)}
			log.Warn("dead-lettered", "attempt", attempt, "failure", r.Failure, "err", r.Err)
		}
		if err := s.publish(events); err != nil {
			log.Error("publish failed; message will be redelivered", "err", err)
			wm.Nack()
			return
		}
		wm.Ack()
		return
	}
}

func (s *server) publish(events []Event) error {
	for _, e := range events {
		wm := message.NewMessage("", e.Value)
		for k, v := range e.Headers {
			wm.Metadata[k] = v
		}
		if e.Key != nil {
			wm.Metadata[kafka.MetadataKey] = string(e.Key)
		}
		if err := s.b.Publish(e.Topic, wm); err != nil {
			return fmt.Errorf("publish to %s: %w", e.Topic, err)
		}
	}
	return nil
}

// messageOf reads the Kafka record behind a watermill message.
func messageOf(wm *message.Message) *Message {
	ctx := wm.Context()
	m := &Message{Value: wm.Payload, Headers: make(map[string]string, len(wm.Metadata))}
	for k, v := range wm.Metadata {
		if k == kafka.MetadataKey {
			m.Key = []byte(v)
			continue
		}
		m.Headers[k] = v
	}
	m.Partition, _ = wkafka.MessagePartitionFromCtx(ctx)
	m.Offset, _ = wkafka.MessagePartitionOffsetFromCtx(ctx)
	m.Timestamp, _ = wkafka.MessageTimestampFromCtx(ctx)
	return m
}
