package tests

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/microfn/microfn/broker"
	"github.com/microfn/microfn/internal/testenv"
)

// watermill's universal pub/sub suite, run against microfn's Kafka adapter
// on the test broker.
//
// Each test gets a consumer group of its own, named after it: the tests
// run in parallel, and in one shared group every Subscribe and Close of
// any test rebalanced all the others. A rebalance waits, up to the
// rebalance timeout (10 s), for every member to give up its partitions,
// and a watermill-kafka member cannot while it holds a message its
// consumer has not taken, as TestTopic's topic-2 subscriber does while the
// test reads topic 1. A topic-1 subscriber whose partition a rebalance
// took before its first fetch (30-100 ms after the assignment) waited for
// that; two such waits outlast the suite's 15 s read.
func TestWatermillUniversalSuite(t *testing.T) {
	env := testenv.Broker(t)
	newPubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		k, err := broker.NewKafka(context.Background(), broker.KafkaConfig{Brokers: env.Brokers})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := k.Subscriber(group)
		if err != nil {
			t.Fatal(err)
		}
		return k, sub
	}
	tests.TestPubSub(t,
		tests.Features{
			ConsumerGroups:      true,
			ExactlyOnceDelivery: false,
			GuaranteedOrder:     false,
			Persistent:          true,
		},
		func(t *testing.T) (message.Publisher, message.Subscriber) { return newPubSub(t, t.Name()) },
		newPubSub,
	)
}
