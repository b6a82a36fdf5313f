// Package fntest runs microfn handlers in tests, with no broker: one
// message in; out come what would become of it and the events it emitted.
package fntest

import (
	"context"
	"fmt"
	"time"

	"github.com/microfn/microfn/codec"
	"github.com/microfn/microfn/fn"
	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/fnhook"
)

// Outcome is what becomes of a message after an attempt.
type Outcome int

const (
	// Ack: the handler succeeded; its events are published and the
	// message committed.
	Ack Outcome = iota
	// Retry: the attempt failed and the message will be tried again.
	Retry
	// DeadLetter: the message goes to the dead-letter topic, because the
	// failure cannot be retried or the attempts are used up.
	DeadLetter
)

func (o Outcome) String() string { return delivery.Action(o).String() }

// Result is one attempt: what follows it, how it failed and what it
// emitted.
type Result struct {
	Outcome Outcome
	// Failure is how the attempt failed, "" when it succeeded: "error",
	// "panic", "timeout", "decode" or "permanent", as a dead letter's
	// fn_failure header would say.
	Failure string
	// Err is the handler's failure, nil when it succeeded.
	Err error
	// Events are the records the handler emitted; only a successful
	// attempt has any.
	Events []fn.Record
	// DeadLetter is the record a host would publish to the dead-letter
	// topic when Outcome is DeadLetter: the message with the fn_* headers
	// naming the failure.
	DeadLetter *fn.Record
}

// Run invokes h once with the payload v, on the first attempt, encoded
// and decoded by the subscriber's codec as a real message would be. opts
// are the subscriber's options (for example fn.Timeout, fn.MaxAttempts).
func Run[T any](h func(context.Context, T) error, v T, opts ...fn.Option) Result {
	f := fn.New("fntest", "fntest", h, opts...)
	s := fnhook.Describe(f)
	headers := map[string]string{}
	value, err := s.Codec.Encode(v, headers)
	if err != nil {
		return rehearse(s, Message(s.Topic, nil, headers), delivery.Failed(delivery.FailureDecode, fmt.Errorf("fntest: encode payload: %w", err)))
	}
	return Invoke(f, Message(s.Topic, value, headers))
}

// Invoke runs the subscriber f once on m, on attempt m.Attempt (the first
// when zero), and says what a host would do next. A subscriber declared
// wrongly fails its attempt for good, with the declaration's error.
func Invoke(f *fn.Func, m *fn.Message) Result {
	s := fnhook.Describe(f)
	if m.Attempt < 1 {
		m.Attempt = 1
	}
	if s.Err != nil {
		return rehearse(s, m, delivery.Failed(delivery.FailurePermanent, s.Err))
	}
	return rehearse(s, m, fnhook.Invoke(context.Background(), f, m))
}

// rehearse carries out r as a host would, storing nothing.
func rehearse(s fnhook.Subscriber, m *fn.Message, r delivery.Result) Result {
	dm := delivery.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: m.Headers}
	out := delivery.Rehearse(delivery.Policy{Function: s.Name, DeadLetter: s.DeadLetter, MaxAttempts: s.MaxAttempts},
		delivery.Attempt{Message: dm, Number: max(m.Attempt, 1), Result: r})
	res := Result{Outcome: Outcome(out.Action), Failure: string(out.Result.Failure), Err: out.Result.Err}
	for _, e := range out.Result.Events {
		res.Events = append(res.Events, fn.Record(e))
	}
	if out.DeadLetter != nil {
		dl := fn.Record(*out.DeadLetter)
		res.DeadLetter = &dl
	}
	return res
}

// Message builds a first-attempt message on topic with the given value and
// headers, as a handler would receive it from partition 0 at offset 0.
func Message(topic string, value []byte, headers map[string]string) *fn.Message {
	if headers == nil {
		headers = map[string]string{}
	}
	return &fn.Message{Topic: topic, Value: value, Headers: headers, Timestamp: time.Now(), Attempt: 1}
}

// Decode decodes an emitted event's value with c (JSON when nil).
func Decode[T any](e fn.Record, c codec.Codec) (T, error) {
	var v T
	if c == nil {
		c = codec.JSON
	}
	err := c.Decode(e.Value, e.Headers, &v)
	return v, err
}
