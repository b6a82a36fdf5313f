package fn

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/microfn/microfn/codec"
	"github.com/microfn/microfn/internal/delivery"
)

// invoke runs the handler once for m under the subscriber's timeout and
// classifies the result. A panic is recovered and is a failed attempt. At
// the timeout invoke returns without waiting for the handler, whose
// context is cancelled; a handler that ignores its context keeps running
// in the background (under the restarter, its process is killed).
//
// invoke does not decide about attempts: delivery.Decide does.
func (f *Func) invoke(ctx context.Context, m *Message) delivery.Result {
	start := time.Now()
	inv := &invocation{f: f, msg: m}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, invKey{}, inv), f.spec.timeout)
	defer cancel()

	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- &panicError{value: r, stack: debug.Stack()}
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

	r := delivery.Result{Duration: time.Since(start)}
	var pe *panicError
	switch {
	case err == nil:
		r.Events = events
		return r
	case timedOut:
		r.Failure = delivery.FailureTimeout
		err = fmt.Errorf("timed out after %v: %w", f.spec.timeout.Round(10*time.Millisecond), err)
	case codec.IsDecodeError(err):
		r.Failure = delivery.FailureDecode
	case isPermanent(err):
		r.Failure = delivery.FailurePermanent
	case errors.As(err, &pe):
		r.Failure = delivery.FailurePanic
	default:
		r.Failure = delivery.FailureError
	}
	r.Err = err
	return r
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure that retrying cannot fix: a handler
// returning it has its message dead-lettered at once. Permanent(nil) is
// nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// panicError is the failure of a handler that panicked.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }
