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
}

// Run invokes h once with the payload v, on the first attempt, encoded
// and decoded by the subscriber's codec as a real message would be. opts
// are the subscriber's options (for example fn.Timeout, fn.MaxAttempts).
func Run[T any](h func(context.Context, T) error, v T, opts ...fn.Option) Result {
	f := fn.New("fntest", "fntest", h, opts...)
	s := fnhook.Describe(f)
	if s.Err != nil {
		return Result{Outcome: DeadLetter, Failure: string(delivery.FailurePermanent), Err: s.Err}
	}
	headers := map[string]string{}
	value, err := s.Codec.Encode(v, headers)
	if err != nil {
		return Result{Outcome: DeadLetter, Failure: string(delivery.FailureDecode), Err: fmt.Errorf("fntest: encode payload: %w", err)}
	}
	return Invoke(f, Message(s.Topic, value, headers))
}

// Invoke runs the subscriber f once on m, on attempt m.Attempt (the first
// when zero), and says what the restarter would do next.
func Invoke(f *fn.Func, m *fn.Message) Result {
	s := fnhook.Describe(f)
	if s.Err != nil {
		return Result{Outcome: DeadLetter, Failure: string(delivery.FailurePermanent), Err: s.Err}
	}
	if m.Attempt < 1 {
		m.Attempt = 1
	}
	r := fnhook.Invoke(context.Background(), f, m)
	res := Result{Outcome: Outcome(delivery.Decide(r, m.Attempt, s.MaxAttempts)), Failure: string(r.Failure), Err: r.Err}
	for _, e := range r.Events {
		res.Events = append(res.Events, fn.Record(e))
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
