package fn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/fnhook"
	"github.com/microfn/microfn/internal/holes"
	"github.com/microfn/microfn/internal/kconn"
	"github.com/microfn/microfn/internal/kwire"
)

func init() { join = joinKwire }

// kwireSession is a standalone run's session on kwire, the one-shot Kafka
// client that keeps a function binary statically linked and quick to
// start (see package kwire for why it is not sarama).
type kwireSession struct {
	client *kwire.Client
	member *kwire.Member
	group  string
	topic  string
	log    *slog.Logger
}

func joinKwire(ctx context.Context, brokers string, conn connSettings, clientID, group, topic string, log *slog.Logger) (session, error) {
	seeds, err := kwire.SeedList(strings.TrimPrefix(strings.TrimSpace(brokers), "kafka://"))
	if err != nil {
		return nil, usageError{err}
	}
	opts := []kwire.Opt{kwire.SeedBrokers(seeds...), kwire.ClientID(clientID)}
	if conn.TLS {
		if fnhook.TLSDialer == nil {
			return nil, usageError{fmt.Errorf("TLS settings given, but this binary has no TLS: add import _ %q to the function's main package", securePkg)}
		}
		d, err := fnhook.TLSDialer(conn.Settings)
		if err != nil {
			return nil, usageError{err}
		}
		if conn.InsecureSkipVerify {
			log.Warn(kconn.InsecureWarning)
		}
		opts = append(opts, kwire.WithDialer(d))
	}
	if conn.SASLMechanism != "" {
		m, err := kwire.NewMechanism(conn.SASLMechanism, conn.SASLUser, conn.password)
		if err != nil {
			return nil, usageError{fmt.Errorf("SASL %s: this binary has no SCRAM: add import _ %q to the function's main package", conn.SASLMechanism, securePkg)}
		}
		opts = append(opts, kwire.WithSASL(m))
	}
	client, err := kwire.NewClient(opts...)
	if err != nil {
		return nil, usageError{err}
	}
	member, err := client.Join(ctx, group, topic)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("join consumer group %q at %s: %w", group, brokers, err)
	}
	log.Info("joined; waiting for a message", "group", group, "generation", member.Generation(), "partitions", member.Assigned())
	return &kwireSession{client: client, member: member, group: group, topic: topic, log: log}, nil
}

// securePkg is the package a function imports for TLS and SCRAM: they
// link crypto/tls and net, which a function that needs neither should not
// pay for at every start.
const securePkg = "github.com/microfn/microfn/fn/secure"

func (s *kwireSession) Take(ctx context.Context) (*Message, error) {
	r, err := s.member.Take(ctx)
	if err != nil {
		return nil, err
	}
	s.reportHoles()
	m := &Message{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	if len(r.Headers) > 0 {
		m.Headers = make(map[string]string, len(r.Headers))
		for _, h := range r.Headers {
			m.Headers[h.Key] = string(h.Value)
		}
	}
	return m, nil
}

// reportHoles logs, in one line, the partitions whose log no longer held
// the group's committed position; Take went on from the log's start.
func (s *kwireSession) reportHoles() {
	var found []holes.Hole
	for _, h := range s.member.Holes() {
		p := holes.Position{Topic: h.Topic, Partition: h.Partition, Committed: h.Committed, LogStart: h.Start, LogEnd: h.End}
		if hole, ok := holes.Check(p); ok {
			found = append(found, hole)
		}
	}
	if len(found) > 0 {
		s.log.Error("records the group had not processed are gone; going on from the oldest record", "holes", holes.Describe(found))
	}
}

func (s *kwireSession) Committed(partition int32) (int64, string, error) {
	if c, ok := s.member.Committed(partition); ok {
		return c.Offset, c.Metadata, nil
	}
	cs, err := s.client.FetchCommitted(context.Background(), s.group, s.topic, partition)
	if err != nil {
		return 0, "", err
	}
	c, ok := cs[partition]
	if !ok {
		return -1, "", nil
	}
	return c.Offset, c.Metadata, nil
}

func (s *kwireSession) Commit(partition int32, offset int64, metadata string) error {
	return s.member.Commit(context.Background(), partition, offset, metadata)
}

// Send produces records and returns those not stored; a refusal that
// sending again cannot fix is marked with delivery.Refused.
func (s *kwireSession) Send(ctx context.Context, records []delivery.Record) ([]delivery.Record, error) {
	if len(records) == 0 {
		return nil, nil
	}
	recs := make([]*kwire.Record, len(records))
	for i, r := range records {
		recs[i] = &kwire.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: kwireHeaders(r.Headers)}
	}
	err := s.client.Produce(ctx, recs...)
	var perr *kwire.ProduceError
	if err == nil || !errors.As(err, &perr) {
		if err != nil {
			return records, err
		}
		return nil, nil
	}
	failed := func(r *kwire.Record) *kwire.PartitionError {
		for _, p := range perr.Partitions {
			if p.Topic == r.Topic && (p.Partition < 0 || p.Partition == r.Partition) {
				return p
			}
		}
		return nil
	}
	var unsent []delivery.Record
	var refusal error
	for i, r := range recs {
		p := failed(r)
		if p == nil {
			continue
		}
		unsent = append(unsent, records[i])
		if refusal == nil && refused(p.Err) {
			refusal = fmt.Errorf("publish to %s: %w", r.Topic, p.Err)
		}
	}
	if refusal != nil {
		return unsent, delivery.Refused(refusal)
	}
	return unsent, err
}

// refused says whether the broker refused a record for good: sending it
// again cannot succeed.
func refused(err error) bool {
	for _, code := range []kwire.Error{
		kwire.MessageTooLarge, kwire.RecordListTooLarge, kwire.InvalidTopicException, kwire.CorruptMessage,
		kwire.TopicAuthorizationFailed, kwire.ClusterAuthorizationFailed, kwire.InvalidRecord, kwire.PolicyViolation,
	} {
		if errors.Is(err, code) {
			return true
		}
	}
	return false
}

// kwireHeaders orders headers by key, so that a record's bytes do not
// depend on map order.
func kwireHeaders(m map[string]string) []kwire.Header {
	if len(m) == 0 {
		return nil
	}
	hs := make([]kwire.Header, 0, len(m))
	for k, v := range m {
		hs = append(hs, kwire.Header{Key: k, Value: []byte(v)})
	}
	slices.SortFunc(hs, func(a, b kwire.Header) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return hs
}

func (s *kwireSession) Close() error {
	err := s.member.Close(context.Background())
	return errors.Join(err, s.client.Close())
}
