// Package fntest runs microfn handlers in tests, with no broker: one
// message in, the outcome and the emitted events out.
package fntest

import (
	"context"
	"fmt"
	"time"

	"github.com/microfn/microfn/codec"
	"github.com/microfn/microfn/fn"
)

// Run invokes h once with the payload v, encoded and decoded by the
// subscriber's codec as a real message would be, on the first attempt.
// opts are the subscriber's options (for example fn.Timeout).
func Run[T any](h func(context.Context, T) error, v T, opts ...fn.Option) fn.Result {
	f := fn.New("fntest", "fntest", h, opts...)
	if err := f.Err(); err != nil {
		return fn.Result{Outcome: fn.OutcomeDeadLetter, Err: err, Failure: fn.FailurePermanent}
	}
	h2 := map[string]string{}
	value, err := f.PayloadCodec().Encode(v, h2)
	if err != nil {
		return fn.Result{Outcome: fn.OutcomeDeadLetter, Err: fmt.Errorf("fntest: encode payload: %w", err), Failure: fn.FailureDecode}
	}
	return f.Invoke(context.Background(), Message(f.Topic(), value, h2))
}

// Message builds a first-attempt message on topic with the given value and
// headers, as a handler would receive it from partition 0 at offset 0.
func Message(topic string, value []byte, headers map[string]string) *fn.Message {
	if headers == nil {
		headers = map[string]string{}
	}
	return &fn.Message{Topic: topic, Value: value, Headers: headers, Timestamp: time.Now(), Attempt: 1}
}

// Invoke runs f once for m. It is f.Invoke with a background context.
func Invoke(f *fn.Func, m *fn.Message) fn.Result {
	return f.Invoke(context.Background(), m)
}

// Decode decodes an emitted event's value with c (JSON when nil).
func Decode[T any](e fn.Event, c codec.Codec) (T, error) {
	var v T
	if c == nil {
		c = codec.JSON
	}
	err := c.Decode(e.Value, e.Headers, &v)
	return v, err
}
