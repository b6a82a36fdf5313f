package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// createTimeout bounds how long the controller may take to create a topic.
const createTimeout = 10 * time.Second

// TopicExists asks the cluster whether topic exists, without creating it
// (a metadata request may auto-create a topic; this one never does).
func TopicExists(client sarama.Client, topic string) (bool, error) {
	b, err := client.Controller()
	if err != nil {
		return false, err
	}
	req := sarama.NewMetadataRequest(client.Config().Version, []string{topic})
	req.AllowAutoTopicCreation = false
	resp, err := b.GetMetadata(req)
	if err != nil {
		_, _ = client.RefreshController()
		return false, err
	}
	for _, t := range resp.Topics {
		if t.Name != topic {
			continue
		}
		switch {
		case errors.Is(t.Err, sarama.ErrNoError):
			return true, nil
		case errors.Is(t.Err, sarama.ErrUnknownTopicOrPartition):
			return false, nil
		default:
			return false, fmt.Errorf("topic %s: %w", topic, t.Err)
		}
	}
	return false, fmt.Errorf("topic %s: not in the metadata response", topic)
}

// CreateTopic creates topic with the broker's default partition count
// and replication factor (num.partitions, default.replication.factor),
// as Kafka's own auto-creation would. A topic that exists already is not
// an error.
func CreateTopic(client sarama.Client, topic string) error {
	b, err := client.Controller()
	if err != nil {
		return err
	}
	req := sarama.NewCreateTopicsRequest(client.Config().Version,
		map[string]*sarama.TopicDetail{topic: {NumPartitions: -1, ReplicationFactor: -1}}, createTimeout, false)
	resp, err := b.CreateTopics(req)
	if err != nil {
		_, _ = client.RefreshController()
		return err
	}
	te, ok := resp.TopicErrors[topic]
	if !ok {
		return fmt.Errorf("create topic %s: no result in the response", topic)
	}
	if errors.Is(te.Err, sarama.ErrNoError) || errors.Is(te.Err, sarama.ErrTopicAlreadyExists) {
		return nil
	}
	if errors.Is(te.Err, sarama.ErrNotController) {
		_, _ = client.RefreshController()
	}
	return te
}

// Topics makes sure that the topics a client writes to exist before it
// writes: production clusters often run with auto.create.topics.enable=false,
// where a produce to a missing topic fails. It remembers the topics it has
// seen, so only a topic's first write costs a round trip.
type Topics struct {
	client sarama.Client
	log    *slog.Logger

	mu     sync.Mutex
	known  map[string]bool
	warned map[string]bool
}

// NewTopics returns a Topics that checks and creates topics through
// client and logs to log (nil: discard).
func NewTopics(client sarama.Client, log *slog.Logger) *Topics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Topics{client: client, log: log, known: map[string]bool{}, warned: map[string]bool{}}
}

// Ensure creates those of topics that do not exist. It returns an error
// naming every topic that is missing and could not be created; the first
// time a topic cannot be created, it also logs why, once. A write to such
// a topic will fail unless someone creates it.
func (t *Topics) Ensure(topics ...string) error {
	var errs []error
	for _, topic := range topics {
		t.mu.Lock()
		known := t.known[topic]
		t.mu.Unlock()
		if known {
			continue
		}
		err := t.ensure(topic)
		t.mu.Lock()
		if err == nil {
			t.known[topic] = true
		} else if !t.warned[topic] {
			t.warned[topic] = true
			t.log.Error("topic does not exist and cannot be created: writes to it fail until it is created",
				"topic", topic, "err", err)
		}
		t.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (t *Topics) ensure(topic string) error {
	ok, err := TopicExists(t.client, topic)
	if err == nil && ok {
		return nil
	}
	if err := CreateTopic(t.client, topic); err != nil {
		return &MissingTopicError{Topic: topic, Err: err}
	}
	return nil
}

// MissingTopicError is a topic that does not exist and could not be
// created, for example because the client may not create topics.
type MissingTopicError struct {
	Topic string
	Err   error
}

func (e *MissingTopicError) Error() string {
	return fmt.Sprintf("topic %s does not exist and cannot be created: %v", e.Topic, e.Err)
}

func (e *MissingTopicError) Unwrap() error { return e.Err }
