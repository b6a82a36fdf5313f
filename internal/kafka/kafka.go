// Package kafka holds the sarama settings and broker-address parsing that
// every microfn Kafka client shares, so the standalone function mode, the
// broker adapter and fnctl speak to Kafka the same way.
package kafka

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/rcrowley/go-metrics"

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/holes"
)

// DefaultBrokers is where microfn looks for Kafka when nothing else is
// configured: the embedded broker that `fnctl up` and `fnctl broker` run.
const DefaultBrokers = "127.0.0.1:9092"

// EnvBrokers names the environment variable that overrides DefaultBrokers.
const EnvBrokers = "FN_BROKERS"

// Brokers returns the broker list from flag (when non-empty), else from
// FN_BROKERS, else DefaultBrokers.
func Brokers(flag string) ([]string, error) {
	s := flag
	if s == "" {
		s = os.Getenv(EnvBrokers)
	}
	if s == "" {
		s = DefaultBrokers
	}
	return ParseBrokers(s)
}

// ParseBrokers parses "h1:9092,h2:9092", optionally prefixed by "kafka://".
func ParseBrokers(s string) ([]string, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "kafka://")
	var out []string
	for _, b := range strings.Split(s, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("invalid broker address %q: want host:port", b)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no broker address in %q", s)
	}
	return out, nil
}

// Version is the Kafka protocol version microfn speaks: Kafka 3.0 and
// newer (and the embedded broker) accept it, and it has record headers.
var Version = sarama.V3_0_0_0

// Config returns a sarama configuration for microfn clients: headers
// supported, new consumer groups start at the oldest offset (a function
// deployed after its first events must still see them), offsets are
// committed explicitly, and a missing broker fails fast instead of
// retrying for minutes.
func Config(clientID string) *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = clientID
	c.MetricRegistry = noMetrics{}
	c.Version = Version
	c.Net.DialTimeout = 5 * time.Second
	c.Metadata.Retry.Max = 3
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	c.Metadata.AllowAutoTopicCreation = true

	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Retry.Max = 5
	c.Producer.Retry.Backoff = 100 * time.Millisecond
	c.Producer.Partitioner = sarama.NewHashPartitioner
	c.Producer.MaxMessageBytes = 4 << 20

	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	c.Consumer.Group.Heartbeat.Interval = 1 * time.Second
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	c.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	c.Consumer.MaxWaitTime = 250 * time.Millisecond
	return c
}

// noMetrics is a go-metrics registry that keeps nothing. sarama records
// meters and exponentially decaying histograms on every request; nothing in
// microfn reads them, and they cost CPU on the per-message path. Set on
// microfn's own clients, it leaves every other user of go-metrics in the
// process alone (metrics.UseNilMetrics would not).
type noMetrics struct{}

func (noMetrics) Each(func(string, any))            {}
func (noMetrics) Get(string) any                    { return nil }
func (noMetrics) GetAll() map[string]map[string]any { return nil }
func (noMetrics) Register(string, any) error        { return nil }
func (noMetrics) RunHealthchecks()                  {}
func (noMetrics) Unregister(string)                 {}
func (noMetrics) UnregisterAll()                    {}

// GetOrRegister returns a metric that records nothing instead of building
// the one asked for.
func (noMetrics) GetOrRegister(_ string, metric any) any {
	switch m := metric.(type) {
	case func() metrics.Meter:
		return metrics.NilMeter{}
	case func() metrics.Counter:
		return metrics.NilCounter{}
	case func() metrics.Histogram:
		return metrics.NilHistogram{}
	case func() metrics.Gauge:
		return metrics.NilGauge{}
	case func() metrics.Timer:
		return metrics.NilTimer{}
	case func() any:
		return m()
	}
	return metric
}

// Headers converts sarama record headers to a map. A repeated key keeps
// its last value, as watermill's metadata does.
func Headers(hs []*sarama.RecordHeader) map[string]string {
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		if h == nil {
			continue
		}
		m[string(h.Key)] = string(h.Value)
	}
	return m
}

// RecordHeaders converts a header map to sarama record headers.
func RecordHeaders(m map[string]string) []sarama.RecordHeader {
	if len(m) == 0 {
		return nil
	}
	out := make([]sarama.RecordHeader, 0, len(m))
	for k, v := range m {
		out = append(out, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	return out
}

// MetadataKey is the watermill metadata entry that carries the Kafka record
// key through microfn's watermill adapter.
const MetadataKey = "_kafka_key"

// ProducerMessage builds a record, keeping a nil key or value null.
func ProducerMessage(topic string, key, value []byte, headers map[string]string) *sarama.ProducerMessage {
	pm := &sarama.ProducerMessage{Topic: topic, Headers: RecordHeaders(headers)}
	if key != nil {
		pm.Key = sarama.ByteEncoder(key)
	}
	if value != nil {
		pm.Value = sarama.ByteEncoder(value)
	}
	return pm
}

// Commit is one partition's offset commit: Offset is the next offset to
// consume, Metadata the string kept with it.
type Commit struct {
	Topic     string
	Partition int32
	Offset    int64
	Metadata  string
}

// CommitOffsets commits synchronously as member memberID of the group's
// generation, so a member that lost its partitions in a rebalance is
// refused instead of overwriting the new owner's progress.
func CommitOffsets(client sarama.Client, group string, generation int32, memberID string, commits []Commit) error {
	if len(commits) == 0 {
		return nil
	}
	coord, err := client.Coordinator(group)
	if err != nil {
		return err
	}
	req := sarama.NewOffsetCommitRequest(client.Config(), group)
	req.ConsumerGroupGeneration = generation
	req.ConsumerID = memberID
	for _, c := range commits {
		req.AddBlock(c.Topic, c.Partition, c.Offset, 0, c.Metadata)
	}
	resp, err := coord.CommitOffset(req)
	if err != nil {
		_ = client.RefreshCoordinator(group)
		return err
	}
	for _, c := range commits {
		kerr, ok := resp.Errors[c.Topic][c.Partition]
		if !ok {
			return fmt.Errorf("commit %s/%d: no result in the response", c.Topic, c.Partition)
		}
		if kerr != sarama.ErrNoError {
			if errors.Is(kerr, sarama.ErrNotCoordinatorForConsumer) {
				_ = client.RefreshCoordinator(group)
			}
			return fmt.Errorf("commit %s/%d: %w", c.Topic, c.Partition, kerr)
		}
	}
	return nil
}

// FetchCommitted returns the group's committed offset (-1 when none) and
// metadata for each partition of topic asked for.
// A coordinator that moved, or is still loading the group (a new group's
// first minutes on Kafka), is asked again for up to coordinatorWait.
func FetchCommitted(client sarama.Client, group, topic string, partitions []int32) (map[int32]Commit, error) {
	var resp *sarama.OffsetFetchResponse
	for wait, deadline := 50*time.Millisecond, time.Now().Add(coordinatorWait); ; wait = min(2*wait, time.Second) {
		var err error
		resp, err = fetchOffsets(client, group, topic, partitions)
		if err != nil {
			return nil, err
		}
		moving := coordinatorMoving(resp.Err)
		for _, p := range partitions {
			if b := resp.GetBlock(topic, p); b != nil && coordinatorMoving(b.Err) {
				moving = true
			}
		}
		if !moving || time.Now().After(deadline) {
			break
		}
		_ = client.RefreshCoordinator(group)
		time.Sleep(wait)
	}
	out := make(map[int32]Commit, len(partitions))
	if errors.Is(resp.Err, sarama.ErrGroupIDNotFound) {
		for _, p := range partitions {
			out[p] = Commit{Topic: topic, Partition: p, Offset: -1}
		}
		return out, nil // a group that never committed
	}
	if resp.Err != sarama.ErrNoError {
		return nil, resp.Err
	}
	for _, p := range partitions {
		c := Commit{Topic: topic, Partition: p, Offset: -1}
		if b := resp.GetBlock(topic, p); b != nil {
			if b.Err != sarama.ErrNoError {
				return nil, fmt.Errorf("committed offset of %s/%d: %w", topic, p, b.Err)
			}
			c.Offset, c.Metadata = b.Offset, b.Metadata
		}
		out[p] = c
	}
	return out, nil
}

// coordinatorWait bounds how long FetchCommitted waits for a group's
// coordinator to settle.
const coordinatorWait = 10 * time.Second

func fetchOffsets(client sarama.Client, group, topic string, partitions []int32) (*sarama.OffsetFetchResponse, error) {
	coord, err := client.Coordinator(group)
	if err != nil {
		return nil, err
	}
	req := sarama.NewOffsetFetchRequest(client.Config().Version, group, map[string][]int32{topic: partitions})
	resp, err := coord.FetchOffset(req)
	if err != nil {
		_ = client.RefreshCoordinator(group)
		return nil, err
	}
	return resp, nil
}

// coordinatorMoving reports a group error that passes once the client
// asks the group's current, loaded coordinator.
func coordinatorMoving(err error) bool {
	return errors.Is(err, sarama.ErrNotCoordinatorForConsumer) || errors.Is(err, sarama.ErrOffsetsLoadInProgress) ||
		errors.Is(err, sarama.ErrConsumerCoordinatorNotAvailable)
}

// IsRefusal reports whether a produce error is the broker refusing the
// records themselves, so that sending them again cannot succeed.
func IsRefusal(err error) bool {
	for _, kerr := range []sarama.KError{
		sarama.ErrMessageSizeTooLarge, sarama.ErrMessageSetSizeTooLarge, sarama.ErrInvalidTopic,
		sarama.ErrTopicAuthorizationFailed, sarama.ErrClusterAuthorizationFailed, sarama.ErrInvalidRecord,
		sarama.ErrPolicyViolation, sarama.ErrInvalidMessage, sarama.ErrUnsupportedForMessageFormat,
	} {
		if errors.Is(err, kerr) {
			return true
		}
	}
	return false
}

// Send publishes records with p, as a delivery.SendFunc: on failure it
// returns the records the broker did not store, and marks a refusal that
// sending again cannot fix with delivery.Refused.
func Send(p sarama.SyncProducer, records []delivery.Record) ([]delivery.Record, error) {
	if len(records) == 0 {
		return nil, nil
	}
	msgs := make([]*sarama.ProducerMessage, len(records))
	for i, r := range records {
		msgs[i] = ProducerMessage(r.Topic, r.Key, r.Value, r.Headers)
		msgs[i].Metadata = i
	}
	err := p.SendMessages(msgs)
	if err == nil {
		return nil, nil
	}
	var perrs sarama.ProducerErrors
	if !errors.As(err, &perrs) {
		return nil, err
	}
	unsent := make([]delivery.Record, 0, len(perrs))
	var refusal error
	for _, pe := range perrs {
		if i, ok := pe.Msg.Metadata.(int); ok {
			unsent = append(unsent, records[i])
		}
		if refusal == nil && IsRefusal(pe.Err) {
			refusal = fmt.Errorf("publish to %s: %w", pe.Msg.Topic, pe.Err)
		}
	}
	if refusal != nil {
		return unsent, delivery.Refused(refusal)
	}
	return unsent, fmt.Errorf("publish to %s: %w", perrs[0].Msg.Topic, perrs[0].Err)
}

// Positions reads what holes.Check compares for the partitions of topic:
// the group's committed offsets and each log's first and end offsets.
func Positions(client sarama.Client, group, topic string, partitions []int32) ([]holes.Position, error) {
	committed, err := FetchCommitted(client, group, topic, partitions)
	if err != nil {
		return nil, fmt.Errorf("committed offsets of %s: %w", topic, err)
	}
	out := make([]holes.Position, 0, len(partitions))
	for _, p := range partitions {
		pos := holes.Position{Topic: topic, Partition: p, Committed: committed[p].Offset}
		if pos.LogStart, err = client.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
			return nil, fmt.Errorf("log start of %s/%d: %w", topic, p, err)
		}
		if pos.LogEnd, err = client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			return nil, fmt.Errorf("log end of %s/%d: %w", topic, p, err)
		}
		out = append(out, pos)
	}
	return out, nil
}
