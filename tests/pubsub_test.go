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
		func(t *testing.T) (message.Publisher, message.Subscriber) { return newPubSub(t, "test") },
		newPubSub,
	)
}
