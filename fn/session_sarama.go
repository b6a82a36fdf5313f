package fn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/holes"
	"github.com/microfn/microfn/internal/kafka"
)

func init() { join = joinSarama }

// saramaSession is a session on sarama's consumer group: ConsumeClaim
// hands over the first message and then holds the session (and so the
// generation the commit needs) until Close.
type saramaSession struct {
	client sarama.Client
	group  sarama.ConsumerGroup
	gid    string
	topic  string
	cancel context.CancelFunc

	log      *slog.Logger
	taken    chan struct{} // closed when a message was taken
	msgs     chan *Message
	failed   chan error
	once     sync.Once
	mu       sync.Mutex
	sess     sarama.ConsumerGroupSession
	consumed chan struct{} // closed when Consume has returned
}

func joinSarama(_ context.Context, brokers, clientID, group, topic string, log *slog.Logger) (session, error) {
	addrs, err := kafka.ParseBrokers(brokers)
	if err != nil {
		return nil, usageError{err}
	}
	cfg := kafka.Config(clientID)
	// Leaving the group waits for the partition consumers' long-polls to
	// end: keep them short, a one-shot process has nothing else to wait for.
	cfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	client, err := sarama.NewClient(addrs, cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Kafka at %v: %w", addrs, err)
	}
	g, err := sarama.NewConsumerGroupFromClient(group, client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("join consumer group %q: %w", group, err)
	}
	go func() {
		for err := range g.Errors() {
			log.Warn("consumer group", "err", err)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	s := &saramaSession{client: client, group: g, gid: group, topic: topic, cancel: cancel, log: log,
		taken: make(chan struct{}), msgs: make(chan *Message, 1), failed: make(chan error, 1), consumed: make(chan struct{})}
	go func() {
		defer close(s.consumed)
		// Consume returns at every rebalance; rejoin until a message is taken.
		for ctx.Err() == nil && !s.isTaken() {
			if err := g.Consume(ctx, []string{topic}, s); err != nil {
				s.failed <- err
				return
			}
		}
	}()
	return s, nil
}

func (s *saramaSession) isTaken() bool {
	select {
	case <-s.taken:
		return true
	default:
		return false
	}
}

func (s *saramaSession) Setup(sess sarama.ConsumerGroupSession) error {
	s.mu.Lock()
	s.sess = sess
	s.mu.Unlock()
	s.log.Info("joined; waiting for a message", "group", s.gid, "generation", sess.GenerationID())
	s.reportHoles(sess.Claims()[s.topic])
	return nil
}

// reportHoles logs the claimed partitions whose log no longer holds the
// group's committed position. sarama goes on from the oldest record
// without a word.
func (s *saramaSession) reportHoles(partitions []int32) {
	if len(partitions) == 0 {
		return
	}
	pos, err := kafka.Positions(s.client, s.gid, s.topic, partitions)
	if err != nil {
		s.log.Warn("cannot check the partitions' logs for holes", "err", err)
		return
	}
	var found []holes.Hole
	for _, p := range pos {
		if h, ok := holes.Check(p); ok {
			found = append(found, h)
		}
	}
	if len(found) > 0 {
		s.log.Error("records the group had not processed are gone; going on from the oldest record", "holes", holes.Describe(found))
	}
}

func (s *saramaSession) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (s *saramaSession) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	select {
	case km, ok := <-claim.Messages():
		if !ok {
			return nil
		}
		first := false
		s.once.Do(func() { first = true; close(s.taken) })
		if first {
			s.msgs <- &Message{Topic: km.Topic, Partition: km.Partition, Offset: km.Offset, Key: km.Key,
				Value: km.Value, Headers: kafka.Headers(km.Headers), Timestamp: km.Timestamp}
		}
		// Hold the session until Close, so the generation stays valid for
		// the commit; another partition's message stays uncommitted.
		<-sess.Context().Done()
		return nil
	case <-sess.Context().Done():
		return nil
	}
}

func (s *saramaSession) Take(ctx context.Context) (*Message, error) {
	select {
	case m := <-s.msgs:
		return m, nil
	case err := <-s.failed:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *saramaSession) Committed(partition int32) (int64, string, error) {
	c, err := kafka.FetchCommitted(s.client, s.gid, s.topic, []int32{partition})
	if err != nil {
		return 0, "", err
	}
	return c[partition].Offset, c[partition].Metadata, nil
}

func (s *saramaSession) Commit(partition int32, offset int64, metadata string) error {
	s.mu.Lock()
	sess := s.sess
	s.mu.Unlock()
	if sess == nil {
		return errors.New("no group session")
	}
	return kafka.CommitOffsets(s.client, s.gid, sess.GenerationID(), sess.MemberID(),
		[]kafka.Commit{{Topic: s.topic, Partition: partition, Offset: offset, Metadata: metadata}})
}

func (s *saramaSession) Send(_ context.Context, records []delivery.Record) ([]delivery.Record, error) {
	if len(records) == 0 {
		return nil, nil
	}
	p, err := sarama.NewSyncProducerFromClient(s.client)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return kafka.Send(p, records)
}

func (s *saramaSession) Close() error {
	s.cancel()
	err := s.group.Close()
	<-s.consumed
	return errors.Join(err, s.client.Close())
}
