package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/microfn/microfn/fn"
	"github.com/microfn/microfn/internal/kafka"
)

// KafkaConfig configures a Kafka broker connection.
type KafkaConfig struct {
	// Brokers is "h1:9092,h2:9092" (a "kafka://" prefix is allowed).
	// Empty means FN_BROKERS, else 127.0.0.1:9092.
	Brokers string
	// TLS, when set, connects over TLS with this configuration.
	TLS *tls.Config
	// SASL, when set, authenticates every connection.
	SASL *SASL
	// ClientID names the client in the broker's logs; default "microfn".
	ClientID string
	// Logger receives watermill's logs; nil discards them.
	Logger watermill.LoggerAdapter
	// Sarama adjusts the sarama configuration after microfn's defaults.
	Sarama func(*sarama.Config)
}

// SASL is a SASL mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) and
// its credentials.
type SASL struct {
	Mechanism string
	User      string
	Password  string
}

func (c *KafkaConfig) conn() *kafka.Conn {
	if c.TLS == nil && c.SASL == nil {
		return nil
	}
	conn := &kafka.Conn{TLS: c.TLS}
	if c.SASL != nil {
		conn.Mechanism, conn.User, conn.Password = strings.ToUpper(c.SASL.Mechanism), c.SASL.User, c.SASL.Password
	}
	return conn
}

func (c *KafkaConfig) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = "microfn"
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Kafka is a Broker on Apache Kafka through watermill-kafka and sarama.
type Kafka struct {
	cfg     KafkaConfig
	brokers []string
	pub     *wkafka.Publisher
	// client and topics create the topics Publish writes to where the
	// broker does not create topics on first use.
	client  sarama.Client
	topics  *kafka.Topics
	onClose func() error

	closeOnce sync.Once
}

// NewKafka connects a publisher to Kafka; it fails when no broker answers.
func NewKafka(_ context.Context, cfg KafkaConfig) (*Kafka, error) {
	cfg.setDefaults()
	brokers, err := kafka.Brokers(cfg.Brokers)
	if err != nil {
		return nil, err
	}
	k := &Kafka{cfg: cfg, brokers: brokers}
	conn := cfg.conn()
	k.client, err = conn.NewClient(brokers, k.saramaConfig())
	if err != nil {
		return nil, err
	}
	k.topics = kafka.NewTopics(k.client, nil)
	k.pub, err = wkafka.NewPublisher(wkafka.PublisherConfig{
		Brokers:               brokers,
		Marshaler:             Marshaler{},
		OverwriteSaramaConfig: k.saramaConfig(),
	}, cfg.Logger)
	if err != nil {
		k.client.Close()
		return nil, Unreachable(brokers, err)
	}
	return k, nil
}

// Unreachable wraps a connection error with the addresses that were tried.
func Unreachable(brokers []string, err error) error {
	if errors.Is(err, sarama.ErrOutOfBrokers) {
		return fmt.Errorf("cannot reach Kafka at %v: %w", brokers, err)
	}
	return fmt.Errorf("kafka at %v: %w", brokers, err)
}

func (k *Kafka) saramaConfig() *sarama.Config {
	c := k.cfg.conn().Config(k.cfg.ClientID)
	if k.cfg.Sarama != nil {
		k.cfg.Sarama(c)
	}
	return c
}

// Brokers returns the broker addresses in use.
func (k *Kafka) Brokers() []string { return k.brokers }

// Publish publishes messages synchronously, in order. It creates topic,
// with the broker's default partitions and replication, when it does not
// exist.
func (k *Kafka) Publish(topic string, msgs ...*message.Message) error {
	missing := k.topics.Ensure(topic)
	if err := k.pub.Publish(topic, msgs...); err != nil {
		if missing != nil {
			return missing // says why better than the produce's "unknown topic"
		}
		return err
	}
	return nil
}

// Subscriber returns a consumer-group subscriber. It commits a message's
// offset when the message is acked; it starts a new group at the oldest
// offset, so nothing published before the group's first member is missed.
// Each Subscribe joins the group as a member of its own, and every
// partition holds its message until it is acked, even one the consumer
// has not taken yet: a rebalance of the group, which any member joining
// or leaving causes, waits up to the rebalance timeout (10 s) for such a
// member. Read every subscription of a group, or give each its own group.
func (k *Kafka) Subscriber(group string) (message.Subscriber, error) {
	sc := k.saramaConfig()
	// watermill-kafka marks offsets on Ack; let sarama commit them.
	sc.Consumer.Offsets.AutoCommit.Enable = true
	s, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{
		Brokers:               k.brokers,
		Unmarshaler:           Marshaler{},
		OverwriteSaramaConfig: sc,
		ConsumerGroup:         group,
		NackResendSleep:       wkafka.NoSleep,
		// SubscribeInitialize creates topics with the broker's defaults.
		InitializeTopicDetails: &sarama.TopicDetail{NumPartitions: -1, ReplicationFactor: -1},
	}, k.cfg.Logger)
	if err != nil {
		return nil, Unreachable(k.brokers, err)
	}
	return s, nil
}

// Close closes the publisher and the embedded broker if Open started one.
// Subscribers belong to whoever asked for them: close them first.
// Closing it again does nothing.
func (k *Kafka) Close() error {
	var err error
	k.closeOnce.Do(func() {
		errs := []error{k.pub.Close(), k.client.Close()}
		if k.onClose != nil {
			errs = append(errs, k.onClose())
		}
		err = errors.Join(errs...)
	})
	return err
}

// Marshaler maps watermill messages to Kafka records and back, keeping the
// record exactly as another Kafka client would see it: the value is the
// payload, each metadata entry is a header, MetadataKey is the record key,
// and the watermill UUID travels in a header only when it is set.
type Marshaler struct{}

// Marshal implements watermill-kafka's Marshaler.
func (Marshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	pm := &sarama.ProducerMessage{Topic: topic}
	if msg.Payload != nil {
		pm.Value = sarama.ByteEncoder(msg.Payload)
	}
	if msg.UUID != "" {
		pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(wkafka.UUIDHeaderKey), Value: []byte(msg.UUID)})
	}
	for k, v := range msg.Metadata {
		if k == MetadataKey {
			pm.Key = sarama.ByteEncoder(v)
			continue
		}
		if k == wkafka.UUIDHeaderKey {
			return nil, fmt.Errorf("header %s is reserved for the watermill message UUID", k)
		}
		pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	return pm, nil
}

// Unmarshal implements watermill-kafka's Unmarshaler.
func (Marshaler) Unmarshal(km *sarama.ConsumerMessage) (*message.Message, error) {
	md := make(message.Metadata, len(km.Headers)+1)
	var id string
	for _, h := range km.Headers {
		if string(h.Key) == wkafka.UUIDHeaderKey {
			id = string(h.Value)
			continue
		}
		md[string(h.Key)] = string(h.Value)
	}
	if km.Key != nil {
		md[MetadataKey] = string(km.Key)
	}
	m := message.NewMessage(id, km.Value)
	m.Metadata = md
	return m, nil
}

// Consume implements fn.Broker: it runs handle for each message of topic
// as a member of group, acknowledging the message when handle returns nil
// and redelivering it otherwise, until ctx ends.
func (k *Kafka) Consume(ctx context.Context, group, topic string, handle func(context.Context, *fn.Message) error) error {
	sub, err := k.Subscriber(group)
	if err != nil {
		return err
	}
	defer sub.Close()
	return consume(ctx, sub, topic, handle)
}

// Send implements fn.Broker: it publishes one record and waits for the
// broker to store it, creating its topic first where it does not exist,
// as Publish does. A refusal that sending again cannot fix is marked with
// fn.Permanent.
func (k *Kafka) Send(_ context.Context, r fn.Record) error {
	missing := k.topics.Ensure(r.Topic)
	err := k.pub.Publish(r.Topic, watermillMessage(r))
	switch {
	case err == nil:
		return nil
	case kafka.IsRefusal(err):
		return fn.Permanent(err)
	case missing != nil:
		return fmt.Errorf("%w (%v)", err, missing)
	}
	return err
}

// consume feeds sub's messages of topic to handle, each on its own
// goroutine (watermill-kafka holds one message per partition in flight).
// When ctx ends it takes no more messages, waits until the running ones
// are finished and their acknowledgements taken, and only then ends the
// subscription: watermill-kafka drops an acknowledgement it sees after
// its subscription ended, so a message finished during a shutdown would
// be delivered again.
func consume(ctx context.Context, sub message.Subscriber, topic string, handle func(context.Context, *fn.Message) error) error {
	subCtx, endSub := context.WithCancel(context.WithoutCancel(ctx))
	defer endSub()
	ch, err := sub.Subscribe(subCtx, topic)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var wm *message.Message
		select {
		case wm = <-ch:
		case <-ctx.Done():
			return nil
		}
		if wm == nil {
			return nil // the subscriber closed
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := handle(ctx, fnMessage(topic, wm)); err != nil {
				wm.Nack()
				return
			}
			wm.Ack()
			// watermill-kafka marks the offset when it sees the Ack, then
			// ends the message's context.
			<-wm.Context().Done()
		}()
	}
}

// fnMessage reads the Kafka record behind a watermill message.
func fnMessage(topic string, wm *message.Message) *fn.Message {
	ctx := wm.Context()
	m := &fn.Message{Topic: topic, Value: wm.Payload, Headers: make(map[string]string, len(wm.Metadata))}
	for k, v := range wm.Metadata {
		if k == MetadataKey {
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

// watermillMessage is r as the Marshaler publishes it.
func watermillMessage(r fn.Record) *message.Message {
	wm := message.NewMessage("", r.Value)
	for k, v := range r.Headers {
		wm.Metadata[k] = v
	}
	if r.Key != nil {
		wm.Metadata[MetadataKey] = string(r.Key)
	}
	return wm
}
