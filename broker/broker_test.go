package broker_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/microfn/microfn/broker"
	"github.com/microfn/microfn/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

func TestKafkaRoundTripKeepsKeyHeadersAndBytes(t *testing.T) {
	env := testenv.Broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, "kafka://"+env.Brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	topic := testenv.Topic(t)

	sub, err := b.Subscriber("g-" + topic)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}

	in := message.NewMessage("", []byte{0, 1, 2, 0xff})
	in.Metadata.Set(broker.MetadataKey, "k1")
	in.Metadata.Set("h", "v")
	if err := b.Publish(topic, in); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		m.Ack()
		if string(m.Payload) != string(in.Payload) {
			t.Errorf("payload = %x, want %x", m.Payload, in.Payload)
		}
		if got := m.Metadata.Get(broker.MetadataKey); got != "k1" {
			t.Errorf("key = %q, want k1", got)
		}
		if got := m.Metadata.Get("h"); got != "v" {
			t.Errorf("header h = %q, want v", got)
		}
		if len(m.Metadata) != 2 {
			t.Errorf("metadata = %v, want only the key and h", m.Metadata)
		}
	case <-ctx.Done():
		t.Fatal("no message within 30s")
	}
}

func TestOpenRefusesBadURLs(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"nats://x:1", "kafka://", "kafka://nohostport", "embedded://127.0.0.1:0?partitions=x"} {
		if b, err := broker.Open(ctx, u); err == nil {
			b.Close()
			t.Errorf("Open(%q) succeeded, want an error", u)
		}
	}
}

func TestUnreachableBrokerFailsFast(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	_, err := broker.Open(ctx, "kafka://127.0.0.1:1")
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	t.Logf("error after %v: %v", time.Since(start).Round(time.Millisecond), err)
}
