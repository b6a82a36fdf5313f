package fn

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/microfn/microfn/codec"
	"github.com/microfn/microfn/internal/delivery"
)

// Message is the Kafka record a handler is running for, with its delivery
// attempt. Handlers read it with MessageFrom.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	// Key is nil when the record has no key.
	Key []byte
	// Value is nil for a null record value (a tombstone), empty for an
	// empty one.
	Value     []byte
	Headers   map[string]string
	Timestamp time.Time
	// Attempt counts deliveries of this message to this subscriber,
	// starting at 1.
	Attempt int
}

// Record is a Kafka record to publish: what a Broker sends for Serve.
type Record struct {
	Topic string
	// Key is nil for a record without a key.
	Key []byte
	// Value is nil for a null value, empty for an empty one.
	Value   []byte
	Headers map[string]string
}

type invKey struct{}

// invocation is the state of one handler call, reachable from its context.
type invocation struct {
	f   *Func
	msg *Message

	mu     sync.Mutex
	events []delivery.Record
	closed bool // the invocation has returned or timed out: Emit is refused
}

// MessageFrom returns the message the handler is running for, or nil when
// ctx does not come from a handler invocation.
func MessageFrom(ctx context.Context) *Message {
	if inv, ok := ctx.Value(invKey{}).(*invocation); ok {
		return inv.msg
	}
	return nil
}

// ErrNoInvocation is returned by Emit when its context does not come from
// a running handler (or comes from one that has already finished).
var ErrNoInvocation = errors.New("fn: Emit outside a running handler")

// EmitOption configures one emitted event.
type EmitOption func(*emitCfg)

type emitCfg struct {
	key     []byte
	headers map[string]string
	codec   codec.Codec
}

// WithKey sets the emitted record's key, which chooses its partition and
// so its order relative to other events with the same key.
func WithKey(key string) EmitOption { return func(c *emitCfg) { c.key = []byte(key) } }

// WithHeader adds a header to the emitted record.
func WithHeader(k, v string) EmitOption {
	return func(c *emitCfg) {
		if c.headers == nil {
			c.headers = map[string]string{}
		}
		c.headers[k] = v
	}
}

// WithCodec encodes the emitted value with c. Default: raw for []byte and
// string values, else the subscriber's codec (JSON when it is raw).
func WithCodec(c codec.Codec) EmitOption { return func(e *emitCfg) { e.codec = c } }

// Emit queues an event on topic with value v. The event is published when
// the handler returns nil, before its message is committed; when the
// handler fails, its events are discarded, so a failed attempt emits
// nothing. When publishing fails after the handler succeeded, the events
// are published again, not the handler run again, unless the message is
// lost to the host first (it stops or crashes): then the message is
// delivered again and its events may be published twice (delivery is at
// least once). Emit fails when v cannot be encoded or when ctx does not
// belong to a running handler.
func Emit(ctx context.Context, topic string, v any, opts ...EmitOption) error {
	inv, ok := ctx.Value(invKey{}).(*invocation)
	if !ok {
		return ErrNoInvocation
	}
	if topic == "" {
		return errors.New("fn: Emit: empty topic")
	}
	var c emitCfg
	for _, o := range opts {
		o(&c)
	}
	if c.codec == nil {
		switch v.(type) {
		case []byte, string:
			c.codec = codec.Raw
		default:
			c.codec = inv.f.spec.codec
			if inv.f.raw || c.codec == codec.Raw {
				c.codec = codec.JSON
			}
		}
	}
	h := maps.Clone(c.headers)
	if h == nil {
		h = map[string]string{}
	}
	value, err := c.codec.Encode(v, h)
	if err != nil {
		return fmt.Errorf("fn: Emit to %s: %w", topic, err)
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.closed {
		return ErrNoInvocation
	}
	inv.events = append(inv.events, delivery.Record{Topic: topic, Key: c.key, Value: value, Headers: h})
	return nil
}
