package broker

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/microfn/microfn/fn"
)

// Memory is watermill's in-memory pub/sub behind the Broker interface, for
// unit tests. It has no consumer groups: every subscriber of a topic gets
// every message, whatever its group.
type Memory struct {
	*gochannel.GoChannel
}

// NewMemory returns an in-memory broker that keeps published messages for
// subscribers that come later.
func NewMemory() *Memory {
	return &Memory{gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})}
}

// Subscriber returns the in-memory pub/sub itself; group is ignored.
func (m *Memory) Subscriber(string) (message.Subscriber, error) { return m.GoChannel, nil }

// Consume implements fn.Broker; group is ignored.
func (m *Memory) Consume(ctx context.Context, _, topic string, handle func(context.Context, *fn.Message) error) error {
	return consume(ctx, m.GoChannel, topic, handle)
}

// Send implements fn.Broker.
func (m *Memory) Send(_ context.Context, r fn.Record) error {
	return m.Publish(r.Topic, watermillMessage(r))
}
