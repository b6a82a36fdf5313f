package fn

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/microfn/microfn/codec"
)

// Invoke runs the handler once for m under the subscriber's timeout and
// classifies the outcome. A panic is recovered and is a failed attempt. At
// the timeout Invoke returns without waiting for the handler, whose
// context is cancelled; a handler that ignores its context keeps running
// in the background (under the restarter, its process is killed).
//
// Invoke does not decide about attempts: an OutcomeRetry for a message
// that has used up its attempts is the caller's to dead-letter.
func (f *Func) Invoke(ctx context.Context, m *Message) Result {
	start := time.Now()
	inv := &invocation{f: f, msg: m}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, invKey{}, inv), f.spec.timeout)
	defer cancel()

	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- &PanicError{Value: r, Stack: debug.Stack()}
			}
		}()
		done <- f.call(ctx, m)
	}()

	var err error
	timedOut := false
	select {
	case err = <-done:
		timedOut = err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded)
	case <-ctx.Done():
		timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		err = ctx.Err()
	}
	inv.mu.Lock()
	inv.closed = true
	events := inv.events
	inv.mu.Unlock()

	r := Result{Duration: time.Since(start)}
	var pe *PanicError
	switch {
	case err == nil:
		r.Outcome, r.Events = OutcomeAck, events
		return r
	case timedOut:
		r.Outcome, r.Failure = OutcomeRetry, FailureTimeout
		err = fmt.Errorf("timed out after %v: %w", f.spec.timeout, err)
	case codec.IsDecodeError(err):
		r.Outcome, r.Failure = OutcomeDeadLetter, FailureDecode
	case IsPermanent(err):
		r.Outcome, r.Failure = OutcomeDeadLetter, FailurePermanent
	case errors.As(err, &pe):
		r.Outcome, r.Failure = OutcomeRetry, FailurePanic
	default:
		r.Outcome, r.Failure = OutcomeRetry, FailureError
	}
	r.Err = err
	return r
}

// Exhausted reports whether a message on its attempt-th delivery whose
// attempt failed has used up the subscriber's attempts.
func (f *Func) Exhausted(attempt int) bool { return attempt >= f.spec.maxAttempts }
