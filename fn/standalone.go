//go:build !microfn_lean

package fn

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/attempts"
	"github.com/microfn/microfn/internal/kafka"
)

func init() { runStandalone = standalone }

// One-shot states: a message can be taken only while waiting, and a signal
// stops the binary only while nothing has been taken.
const (
	stateWaiting int32 = iota
	stateTaken
	stateStopping
)

// standalone joins the subscriber's consumer group, takes exactly one
// message, handles it, commits synchronously and returns the exit code.
func standalone(ctx context.Context, f *Func, brokersFlag string, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("subscriber", f.name, "topic", f.topic)
	brokers, err := kafka.Brokers(brokersFlag)
	if err != nil {
		fmt.Fprintf(stderr, "fn: %v\n", err)
		return ExitUsage
	}
	cfg := kafka.Config("microfn-" + f.name)
	// Leaving the group waits for the partition consumers' long-polls to
	// end: keep them short, a one-shot process has nothing else to wait for.
	cfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "fn: cannot reach Kafka at %v: %v\n", brokers, err)
		return ExitBroker
	}
	defer client.Close()
	group, err := sarama.NewConsumerGroupFromClient(f.spec.group, client)
	if err != nil {
		fmt.Fprintf(stderr, "fn: join consumer group %q: %v\n", f.spec.group, err)
		return ExitBroker
	}
	defer group.Close() // leaves the group, so the next run joins at once
	go func() {
		for err := range group.Errors() {
			log.Warn("consumer group", "err", err)
		}
	}()

	s := &oneShot{f: f, client: client, log: log, done: make(chan int, 1), stop: ctx.Done()}
	consumeCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	failed := make(chan error, 1)
	go func() {
		// Consume returns at every rebalance; rejoin until the message is taken.
		for consumeCtx.Err() == nil && s.state.Load() == stateWaiting {
			if err := group.Consume(consumeCtx, []string{f.topic}, s); err != nil {
				failed <- err
				return
			}
		}
	}()

	select {
	case code := <-s.done:
		return code
	case err := <-failed:
		if s.state.CompareAndSwap(stateWaiting, stateStopping) {
			fmt.Fprintf(stderr, "fn: consume %s: %v\n", f.topic, err)
			return ExitBroker
		}
		return <-s.done
	case <-ctx.Done():
		if s.state.CompareAndSwap(stateWaiting, stateStopping) {
			log.Info("interrupted before a message arrived")
			return ExitInterrupted
		}
		// A message is being handled: let it finish (within its timeout)
		// and commit, so the signal costs no redelivery.
		return <-s.done
	}
}

type oneShot struct {
	f      *Func
	client sarama.Client
	log    *slog.Logger
	stop   <-chan struct{}
	state  atomic.Int32
	done   chan int
}

func (s *oneShot) Setup(sess sarama.ConsumerGroupSession) error {
	s.log.Info("joined; waiting for a message", "group", s.f.spec.group, "generation", sess.GenerationID())
	return nil
}

func (s *oneShot) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (s *oneShot) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	select {
	case km, ok := <-claim.Messages():
		if !ok {
			return nil
		}
		if !s.state.CompareAndSwap(stateWaiting, stateTaken) {
			// Another partition's message was taken, or we are stopping:
			// leave this one uncommitted for the next run.
			<-sess.Context().Done()
			return nil
		}
		s.done <- s.handle(sess, km)
		return nil
	case <-sess.Context().Done():
		return nil
	}
}

func (s *oneShot) handle(sess sarama.ConsumerGroupSession, km *sarama.ConsumerMessage) int {
	f := s.f
	log := s.log.With("partition", km.Partition, "offset", km.Offset)
	meta, err := s.fetchMetadata(km.Topic, km.Partition)
	if err != nil {
		log.Error("read attempt count", "err", err)
		return ExitBroker
	}
	// Finished offsets the restarter recorded stay recorded in our commits.
	done := attempts.DecodeDone(meta)
	if attempts.Covers(done, km.Offset) {
		// The restarter finished it while an earlier message was pending.
		if err := s.commit(sess, km.Topic, km.Partition, km.Offset+1, attempts.Encode(nil, done)); err != nil {
			log.Error("commit", "err", err)
			return ExitBroker
		}
		log.Info("already handled; committed")
		return ExitOK
	}
	prev, _ := attempts.Find(attempts.Decode(meta), km.Offset)
	if wait := time.Until(prev.Last.Add(Backoff(prev.Failed))); prev.Failed > 0 && wait > 0 {
		select {
		case <-time.After(wait):
		case <-s.stop:
			log.Info("interrupted during retry backoff")
			return ExitInterrupted
		}
	}
	m := &Message{
		Topic: km.Topic, Partition: km.Partition, Offset: km.Offset,
		Key: km.Key, Value: km.Value, Headers: kafka.Headers(km.Headers),
		Timestamp: km.Timestamp, Attempt: prev.Failed + 1,
	}
	r := f.Invoke(context.Background(), m)
	log = log.With("attempt", m.Attempt, "duration", r.Duration.Round(time.Microsecond))

	switch {
	case r.Outcome == OutcomeAck:
		if err := s.publish(r.Events); err != nil {
			log.Error("publish emitted events; not committing", "err", err)
			return ExitBroker
		}
		if err := s.commit(sess, km.Topic, km.Partition, km.Offset+1, attempts.Encode(nil, done)); err != nil {
			log.Error("commit", "err", err)
			return ExitBroker
		}
		log.Info("acked", "events", len(r.Events))
		return ExitOK
	case r.Outcome == OutcomeRetry && !f.Exhausted(m.Attempt):
		meta := attempts.Encode([]attempts.Entry{{Offset: km.Offset, Failed: m.Attempt, Last: time.Now()}}, done)
		if err := s.commit(sess, km.Topic, km.Partition, km.Offset, meta); err != nil {
			log.Error("record failed attempt", "err", err, "failure", r.Err)
			return ExitBroker
		}
		log.Warn("attempt failed; will retry", "failure", r.Failure, "err", r.Err, "max_attempts", f.spec.maxAttempts)
		return ExitRetry
	default:
		dl := f.DeadLetterEvent(m, r)
		if err := s.publish([]Event{dl}); err != nil {
			log.Error("dead-letter publish failed; not committing", "dlq", dl.Topic, "err", err)
			return ExitBroker
		}
		if err := s.commit(sess, km.Topic, km.Partition, km.Offset+1, attempts.Encode(nil, done)); err != nil {
			log.Error("commit after dead-letter", "err", err)
			return ExitBroker
		}
		log.Warn("dead-lettered", "dlq", dl.Topic, "reason", dl.Headers[HeaderReason], "err", r.Err)
		return ExitOK
	}
}

// fetchMetadata reads the metadata of the partition's committed offset:
// failure records and finished offsets.
func (s *oneShot) fetchMetadata(topic string, partition int32) (string, error) {
	c, err := kafka.FetchCommitted(s.client, s.f.spec.group, topic, []int32{partition})
	if err != nil {
		return "", err
	}
	return c[partition].Metadata, nil
}

// commit commits offset (the next offset to consume) synchronously as a
// member of the session's generation.
func (s *oneShot) commit(sess sarama.ConsumerGroupSession, topic string, partition int32, offset int64, metadata string) error {
	return kafka.CommitOffsets(s.client, s.f.spec.group, sess.GenerationID(), sess.MemberID(),
		[]kafka.Commit{{Topic: topic, Partition: partition, Offset: offset, Metadata: metadata}})
}

func (s *oneShot) publish(events []Event) error {
	if len(events) == 0 {
		return nil
	}
	topics := make([]string, len(events))
	for i, e := range events {
		topics[i] = e.Topic
	}
	// Dead-letter and event topics are ours to create where the broker
	// does not create topics on first use.
	missing := kafka.NewTopics(s.client, s.log).Ensure(topics...)
	p, err := sarama.NewSyncProducerFromClient(s.client)
	if err != nil {
		return err
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, len(events))
	for i, e := range events {
		msgs[i] = kafka.ProducerMessage(e.Topic, e.Key, e.Value, e.Headers)
	}
	if err := p.SendMessages(msgs); err != nil {
		if missing != nil {
			return missing
		}
		return err
	}
	return nil
}
