package broker

import (
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
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
