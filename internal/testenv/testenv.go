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
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

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

// Selected is the kind of broker Broker runs the tests against, without
// starting it.
func Selected() Kind {
	switch {
	case os.Getenv("FN_TEST_BROKERS") != "":
		return KindExternal
	case os.Getenv("FN_TEST_DOCKER") == "1":
		return KindDocker
	}
	return KindEmbedded
}

// EmbeddedPassOnly skips a test that does not use the test broker (it
// starts an embedded broker of its own, or needs none) unless the tests
// run on the embedded broker: on another broker it would only repeat what
// the embedded pass ran.
func EmbeddedPassOnly(t testing.TB) {
	t.Helper()
	if k := Selected(); k != KindEmbedded {
		t.Skipf("independent of the test broker (%s here): runs in the embedded pass, go test without FN_TEST_BROKERS or FN_TEST_DOCKER", k)
	}
}

// Cleanup stops the shared broker if one was started.
func Cleanup() {
	if stop != nil {
		stop()
	}
}

func start() (*Env, func(), error) {
	switch Selected() {
	case KindExternal:
		return &Env{Kind: KindExternal, Brokers: os.Getenv("FN_TEST_BROKERS")}, nil, nil
	case KindDocker:
		return startDocker()
	}
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		return nil, nil, err
	}
	return &Env{Kind: KindEmbedded, Brokers: e.Addr(), Embedded: e}, func() { e.Close() }, nil
}

// startDocker runs the Apache Kafka release that tests/kafka/pom.xml pins,
// in Docker (the apache/kafka image), with the broker settings of
// tests/kafka/server.properties. Its listener is published on a fixed free
// host port so that the address the broker advertises is the one the tests
// reach.
func startDocker() (*Env, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	version, err := KafkaVersion()
	if err != nil {
		return nil, nil, err
	}
	settings, err := BrokerSettings()
	if err != nil {
		return nil, nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	env := map[string]string{
		"KAFKA_LISTENERS":                      "PLAINTEXT://:9092,CONTROLLER://:9093",
		"KAFKA_ADVERTISED_LISTENERS":           "PLAINTEXT://127.0.0.1:" + port,
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"KAFKA_CONTROLLER_QUORUM_VOTERS":       "1@localhost:9093",
	}
	for k, v := range settings {
		env[EnvName(k)] = v
	}
	c, err := testcontainers.Run(ctx, "apache/kafka:"+version,
		testcontainers.WithEnv(env),
		testcontainers.WithExposedPorts("127.0.0.1:"+port+":9092/tcp"),
		testcontainers.WithWaitStrategy(wait.ForLog("Kafka Server started").WithStartupTimeout(2*time.Minute)))
	if err != nil {
		if c != nil {
			_ = testcontainers.TerminateContainer(c)
		}
		return nil, nil, fmt.Errorf("start Apache Kafka %s in Docker (FN_TEST_DOCKER=1): %w", version, err)
	}
	return &Env{Kind: KindDocker, Brokers: "127.0.0.1:" + port},
		func() { _ = testcontainers.TerminateContainer(c) }, nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// Topic returns a topic name unique to this test.
func Topic(t testing.TB) string {
	t.Helper()
	name := strings.NewReplacer("/", "-", " ", "_", "#", "").Replace(t.Name())
	return fmt.Sprintf("%s-%d", strings.ToLower(name), time.Now().UnixNano()%1e9)
}
