package fn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/microfn/microfn/internal/attempts"
	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/fnproto"
	"github.com/microfn/microfn/internal/kconn"
)

// session is one standalone run's membership of the subscriber's
// consumer group, holding the partitions the group assigned it: all the
// standalone host needs of a Kafka client.
type session interface {
	// Take waits for the first message of the assigned partitions. It
	// returns ctx's error when ctx ends first.
	Take(ctx context.Context) (*Message, error)
	// Committed returns the partition's committed offset (-1 for none)
	// and the metadata stored with it.
	Committed(partition int32) (offset int64, metadata string, err error)
	// Commit commits offset (the next to consume) with metadata, as a
	// member of the group generation that assigned the partition.
	Commit(partition int32, offset int64, metadata string) error
	// Send stores records; see delivery.SendFunc.
	Send(ctx context.Context, records []delivery.Record) ([]delivery.Record, error)
	// Close leaves the group.
	Close() error
}

// joinFunc opens a session: it connects to brokers and joins group as a
// consumer of topic. A nil joinFunc means this binary has no Kafka client.
type joinFunc func(ctx context.Context, brokers string, conn connSettings, clientID, group, topic string, log *slog.Logger) (session, error)

// connSettings are how a standalone run connects: TLS and SASL settings,
// the password read.
type connSettings struct {
	kconn.Settings
	password string
}

var join joinFunc

// standalone joins the subscriber's consumer group, takes exactly one
// message, handles it, commits synchronously and returns the exit code.
func standalone(ctx context.Context, f *Func, brokers string, flags kconn.Settings, getenv func(string) string, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("subscriber", f.name, "topic", f.topic)
	if brokers == "" {
		brokers = defaultBrokers
	}
	conn, err := connFrom(flags, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "fn: %v\n", err)
		return fnproto.ExitUsage
	}
	s, err := join(ctx, brokers, conn, "microfn-"+f.name, f.spec.group, f.topic, log)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "fn: %v\n", err)
			return fnproto.ExitUsage
		}
		if ctx.Err() != nil {
			log.Info("interrupted before a message arrived")
			return fnproto.ExitInterrupted
		}
		fmt.Fprintf(stderr, "fn: %v\n", err)
		return fnproto.ExitBroker
	}
	defer s.Close() // leaves the group, so the next run joins at once
	m, err := s.Take(ctx)
	if err != nil {
		if ctx.Err() != nil {
			log.Info("interrupted before a message arrived")
			return fnproto.ExitInterrupted
		}
		fmt.Fprintf(stderr, "fn: consume %s: %v\n", f.topic, err)
		return fnproto.ExitBroker
	}
	return (&oneShot{f: f, s: s, log: log.With("partition", m.Partition, "offset", m.Offset)}).handle(ctx, m)
}

// connFrom reads the connection settings: flags over the FN_* variables.
func connFrom(flags kconn.Settings, getenv func(string) string) (connSettings, error) {
	env, err := kconn.FromEnv(getenv)
	if err != nil {
		return connSettings{}, err
	}
	c := connSettings{Settings: env.Merge(flags)}
	if err := c.Validate(); err != nil {
		return c, err
	}
	if c.SASLMechanism != "" {
		if c.password, err = c.Password(getenv); err != nil {
			return c, err
		}
	}
	return c, nil
}

// defaultBrokers is the embedded broker of `fnctl up` and `fnctl broker`.
const defaultBrokers = "127.0.0.1:9092"

// usageError marks a join error caused by bad settings, not the broker.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

type oneShot struct {
	f   *Func
	s   session
	log *slog.Logger
}

// handle runs m's attempt and carries out what delivery decides. A signal
// (ctx) while the handler runs lets it finish and commit; it only cuts
// short the waits: a retry's backoff and publishing again.
func (o *oneShot) handle(ctx context.Context, m *Message) int {
	committed, meta, err := o.s.Committed(m.Partition)
	if err != nil {
		o.log.Error("read the attempt count", "err", err)
		return fnproto.ExitBroker
	}
	if m.Offset < committed {
		// The committed offset was past the log's end and the consumer
		// went back to the oldest record (a hole): the metadata speaks of
		// records that are gone, whose offsets new records reuse.
		meta = ""
	}
	// Offsets the restarter finished above its watermark stay recorded in
	// our commits, so that nobody runs them again.
	done := attempts.DecodeDone(meta)
	if attempts.Covers(done, m.Offset) {
		if err := o.s.Commit(m.Partition, m.Offset+1, attempts.Encode(nil, done)); err != nil {
			o.log.Error("commit", "err", err)
			return fnproto.ExitBroker
		}
		o.log.Info("already handled; committed")
		return fnproto.ExitOK
	}
	prev, _ := attempts.Find(attempts.Decode(meta), m.Offset)
	failed := prev.Failures()
	var r delivery.Result
	action := delivery.Retry
	if prev.Running {
		// A run before this one started an attempt and never recorded
		// how it ended: its process died. That attempt failed.
		m.Attempt = failed
		r = delivery.Failed(delivery.FailureCrash, fmt.Errorf("the run of attempt %d ended before it reported an outcome", failed))
		action = delivery.Decide(r, m.Attempt, o.f.spec.maxAttempts)
	}
	log := o.log
	if action == delivery.Retry {
		if wait := time.Until(prev.Last.Add(delivery.Backoff(failed))); failed > 0 && wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				o.log.Info("interrupted during the retry backoff")
				return fnproto.ExitInterrupted
			}
		}
		m.Attempt = failed + 1
		// Record the attempt before it runs: if the handler takes the
		// process down, the next run counts it as failed.
		running := attempts.Entry{Offset: m.Offset, Failed: failed, Last: time.Now(), Running: true}
		if err := o.s.Commit(m.Partition, m.Offset, attempts.Encode([]attempts.Entry{running}, done)); err != nil {
			o.log.Error("record the attempt", "err", err)
			return fnproto.ExitBroker
		}
		r = o.f.invoke(context.Background(), m)
		log = o.log.With("attempt", m.Attempt, "duration", r.Duration.Round(time.Microsecond))
		action = delivery.Decide(r, m.Attempt, o.f.spec.maxAttempts)
	}

	if action == delivery.Ack {
		err := delivery.Publish(ctx, r.Events, o.s.Send, func(err error, wait time.Duration) {
			log.Warn("publishing the handler's events failed; publishing them again", "err", err, "retry_in", wait)
		})
		switch {
		case err == nil:
			if err := o.s.Commit(m.Partition, m.Offset+1, attempts.Encode(nil, done)); err != nil {
				log.Error("commit", "err", err)
				return fnproto.ExitBroker
			}
			log.Info("acked", "events", len(r.Events))
			return fnproto.ExitOK
		case errors.Is(err, delivery.ErrRefused):
			r, action = delivery.Failed(delivery.FailurePublish, fmt.Errorf("publish the handler's events: %w", err)), delivery.DeadLetter
		default:
			log.Error("the handler's events are not published; not committing", "err", err)
			return fnproto.ExitBroker
		}
	}
	if action == delivery.Retry {
		meta := attempts.Encode([]attempts.Entry{{Offset: m.Offset, Failed: m.Attempt, Last: time.Now()}}, done)
		if err := o.s.Commit(m.Partition, m.Offset, meta); err != nil {
			log.Error("record the failed attempt", "err", err, "failure", r.Failure, "attempt_err", r.Err)
			return fnproto.ExitBroker
		}
		log.Warn("attempt failed; will retry", "failure", r.Failure, "err", r.Err, "max_attempts", o.f.spec.maxAttempts)
		return fnproto.ExitRetry
	}
	dl := delivery.NewDeadLetter(o.f.spec.deadLetter, o.f.name, deliveryMessage(m), m.Attempt, r, time.Now())
	if err := delivery.PublishDeadLetter(ctx, dl, o.s.Send, func(err error, wait time.Duration) {
		log.Error("dead-letter publish failed; not committing", "dlq", dl.Topic, "err", err, "retry_in", wait)
	}); err != nil {
		log.Error("the dead letter is not published; not committing", "dlq", dl.Topic, "err", err)
		return fnproto.ExitBroker
	}
	if err := o.s.Commit(m.Partition, m.Offset+1, attempts.Encode(nil, done)); err != nil {
		log.Error("commit after dead-lettering", "err", err)
		return fnproto.ExitBroker
	}
	log.Warn("dead-lettered", "dlq", dl.Topic, "reason", dl.Headers[delivery.HeaderReason], "err", r.Err)
	return fnproto.ExitOK
}
