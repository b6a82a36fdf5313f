// Package broker opens the message brokers microfn runs on, by a URL a user
// can type, as watermill Publishers and Subscribers:
//
//	kafka://h1:9092,h2:9092   Apache Kafka (or any Kafka-protocol broker) through sarama
//	h1:9092,h2:9092           the same, without the scheme
//	kafka+tls://h1:9093?ca=/etc/kafka/ca.pem&sasl=scram-sha-512&user=fn&password-file=/run/secrets/kafka
//	                          over TLS, with SASL; the query's settings are
//	                          ca, cert, key, server-name, insecure-skip-verify=1,
//	                          sasl (plain, scram-sha-256, scram-sha-512), user
//	                          and password-file (else $FN_SASL_PASSWORD: a
//	                          password never goes in a URL); kafka:// takes sasl too
//	embedded://127.0.0.1:9092?data=DIR&partitions=4
//	                          start the embedded Kafka-protocol broker in this
//	                          process and connect to it
//	mem://                    watermill's in-memory pub/sub, for unit tests
package broker

import (
	"context"
	"fmt"
	"github.com/microfn/microfn/internal/kafka"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/microfn/microfn/fn"
)

// Broker publishes messages and hands out subscribers per consumer group.
// It is also an fn.Broker, so fn.Serve can host functions on it.
//
// Publish returns once the broker has stored every message (for Kafka:
// acknowledged by all in-sync replicas). Messages published with the same
// key (MetadataKey) land on the same partition and keep their order.
type Broker interface {
	message.Publisher
	// Subscriber returns a subscriber that is a member of group: each
	// message of a topic goes to one subscriber of the group. An Ack
	// commits the message; a Nack redelivers it. The caller closes it.
	Subscriber(group string) (message.Subscriber, error)
	fn.Broker
}

// MetadataKey is the watermill metadata entry that carries the Kafka record
// key, both ways: set it before Publish to choose the key; a received
// message has it when its record had a key.
const MetadataKey = kafka.MetadataKey

// Open opens the broker named by rawURL. Close the result to release it
// (and, for embedded://, to stop the embedded broker).
func Open(ctx context.Context, rawURL string) (Broker, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		scheme, rest = "kafka", rawURL
	}
	switch scheme {
	case "mem":
		return NewMemory(), nil
	case "kafka", "kafka+tls":
		return openKafka(ctx, scheme+"://"+rest)
	case "embedded":
		return openEmbedded(ctx, rest)
	}
	return nil, fmt.Errorf("unknown broker scheme %q in %q (want kafka://, kafka+tls://, embedded:// or mem://)", scheme, rawURL)
}

func openKafka(ctx context.Context, rawURL string) (Broker, error) {
	brokers, settings, err := kafka.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	conn, err := kafka.Load(settings, os.Getenv, slog.Default())
	if err != nil {
		return nil, fmt.Errorf("broker URL: %w", err)
	}
	cfg := KafkaConfig{Brokers: brokers}
	if conn != nil {
		cfg.TLS = conn.TLS
		if conn.Mechanism != "" {
			cfg.SASL = &SASL{Mechanism: conn.Mechanism, User: conn.User, Password: conn.Password}
		}
	}
	return NewKafka(ctx, cfg)
}

func openEmbedded(ctx context.Context, rest string) (Broker, error) {
	u, err := url.Parse("embedded://" + rest)
	if err != nil {
		return nil, fmt.Errorf("embedded broker URL: %w", err)
	}
	cfg := EmbeddedConfig{Listen: u.Host, DataDir: u.Query().Get("data")}
	if p := u.Query().Get("partitions"); p != "" {
		if cfg.Partitions, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("embedded broker URL: partitions=%q is not a number", p)
		}
	}
	e, err := StartEmbedded(cfg)
	if err != nil {
		return nil, err
	}
	k, err := NewKafka(ctx, KafkaConfig{Brokers: e.Addr()})
	if err != nil {
		e.Close()
		return nil, err
	}
	k.onClose = e.Close
	return k, nil
}
