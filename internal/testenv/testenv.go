// Package testenv chooses the Kafka-protocol broker that microfn's tests
// run against:
//
//	FN_TEST_BROKERS=h1:9092,...  those brokers (a real Kafka you run)
//	FN_TEST_DOCKER=1             a real Apache Kafka in Docker (testcontainers-go)
//	neither                      the embedded broker, started per test binary
//
// It logs which one ran, so a green run says what it was green against.
package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"

	"github.com/microfn/microfn/broker"
)

// Kind says which broker the tests run against.
type Kind string

const (
	KindExternal Kind = "external"
	KindDocker   Kind = "docker"
	KindEmbedded Kind = "embedded"
)

// Env is a running test broker.
type Env struct {
	Kind    Kind
	Brokers string
	// Embedded is the in-process broker when Kind is KindEmbedded, for
	// tests that inject faults; nil otherwise.
	Embedded *broker.Embedded
}

var (
	once   sync.Once
	shared *Env
	errEnv error
	stop   func()
)

// Broker returns the broker shared by the tests of this test binary,
// starting it on first use. Call Cleanup from TestMain to stop it.
func Broker(t testing.TB) *Env {
	t.Helper()
	once.Do(func() { shared, stop, errEnv = start() })
	if errEnv != nil {
		t.Fatalf("test broker: %v", errEnv)
	}
	t.Logf("test broker: %s at %s", shared.Kind, shared.Brokers)
	return shared
}

// Cleanup stops the shared broker if one was started.
func Cleanup() {
	if stop != nil {
		stop()
	}
}

func start() (*Env, func(), error) {
	if b := os.Getenv("FN_TEST_BROKERS"); b != "" {
		return &Env{Kind: KindExternal, Brokers: b}, nil, nil
	}
	if os.Getenv("FN_TEST_DOCKER") == "1" {
		return startDocker()
	}
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		return nil, nil, err
	}
	return &Env{Kind: KindEmbedded, Brokers: e.Addr(), Embedded: e}, func() { e.Close() }, nil
}

func startDocker() (*Env, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := tckafka.Run(ctx, "confluentinc/confluent-local:7.5.0", tckafka.WithClusterID("microfn-test"))
	if err != nil {
		return nil, nil, fmt.Errorf("start Apache Kafka in Docker (FN_TEST_DOCKER=1): %w", err)
	}
	addrs, err := c.Brokers(ctx)
	if err != nil {
		_ = testcontainers.TerminateContainer(c)
		return nil, nil, fmt.Errorf("Kafka container brokers: %w", err)
	}
	return &Env{Kind: KindDocker, Brokers: strings.Join(addrs, ",")},
		func() { _ = testcontainers.TerminateContainer(c) }, nil
}

// Topic returns a topic name unique to this test.
func Topic(t testing.TB) string {
	t.Helper()
	name := strings.NewReplacer("/", "-", " ", "_", "#", "").Replace(t.Name())
	return fmt.Sprintf("%s-%d", strings.ToLower(name), time.Now().UnixNano()%1e9)
}
