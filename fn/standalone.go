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
	m   *Message
	// done are the offsets above the committed one that the restarter
	// finished, as the commit metadata recorded them: every commit keeps
	// them, so that nobody runs them again.
	done []attempts.Range
}

// handle runs m's attempt and carries out what delivery decides, as the
// delivery.Host of m. A signal (ctx) while the handler runs lets it
// finish and commit; it only cuts short the waits: a retry's backoff and
// publishing again.
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
	o.m, o.done = m, attempts.DecodeDone(meta)
	if attempts.Covers(o.done, m.Offset) {
		if err := o.Finish(ctx); err != nil {
			return fnproto.ExitBroker
		}
		o.log.Info("already handled; committed")
		return fnproto.ExitOK
	}
	prev, _ := attempts.Find(attempts.Decode(meta), m.Offset)
	next := delivery.Resume(prev, o.f.spec.maxAttempts)
	m.Attempt = next.Next
	var r delivery.Result
	if next.Crashed != nil {
		r = *next.Crashed
	} else {
		if wait := time.Until(next.At); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				o.log.Info("interrupted during the retry backoff")
				return fnproto.ExitInterrupted
			}
		}
		// Record the attempt before it runs: if the handler takes the
		// process down, the next run counts it as failed.
		running := attempts.Entry{Offset: m.Offset, Failed: m.Attempt - 1, Last: time.Now(), Running: true}
		if err := o.s.Commit(m.Partition, m.Offset, attempts.Encode([]attempts.Entry{running}, o.done)); err != nil {
			o.log.Error("record the attempt", "err", err)
			return fnproto.ExitBroker
		}
		r = o.f.invoke(context.Background(), m)
	}
	out, err := delivery.Carry(ctx, o, o.f.policy(o.log), delivery.Attempt{Message: deliveryMessage(m), Number: m.Attempt, Result: r})
	switch {
	case err != nil:
		return fnproto.ExitBroker
	case out.Action == delivery.Retry:
		return fnproto.ExitRetry
	case out.Action == delivery.Ack:
		o.log.Info("acked", "attempt", m.Attempt, "duration", r.Duration.Round(time.Microsecond), "events", len(r.Events))
	}
	return fnproto.ExitOK
}

// Send stores records; see delivery.Host.
func (o *oneShot) Send(ctx context.Context, records []delivery.Record) ([]delivery.Record, error) {
	return o.s.Send(ctx, records)
}

// Finish commits the message.
func (o *oneShot) Finish(context.Context) error {
	if err := o.s.Commit(o.m.Partition, o.m.Offset+1, attempts.Encode(nil, o.done)); err != nil {
		o.log.Error("commit", "offset", o.m.Offset, "err", err)
		return err
	}
	return nil
}

// Retry records the failed attempts without moving the offset: the next
// run takes the message again and waits out the backoff from the time
// recorded.
func (o *oneShot) Retry(_ context.Context, failed int, _ time.Duration) error {
	meta := attempts.Encode([]attempts.Entry{{Offset: o.m.Offset, Failed: failed, Last: time.Now()}}, o.done)
	if err := o.s.Commit(o.m.Partition, o.m.Offset, meta); err != nil {
		o.log.Error("record the failed attempt", "offset", o.m.Offset, "err", err)
		return err
	}
	return nil
}
