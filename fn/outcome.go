package fn

import (
	"errors"
	"fmt"
	"time"
)

// Outcome is what became of one invocation.
type Outcome int

const (
	// OutcomeAck: the handler succeeded; publish its events, commit.
	OutcomeAck Outcome = iota
	// OutcomeRetry: a failed attempt; try the message again after a
	// backoff, or dead-letter it when its attempts are used up.
	OutcomeRetry
	// OutcomeDeadLetter: a permanent failure; dead-letter now.
	OutcomeDeadLetter
)

func (o Outcome) String() string {
	switch o {
	case OutcomeAck:
		return "ack"
	case OutcomeRetry:
		return "retry"
	case OutcomeDeadLetter:
		return "dead-letter"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Failure kinds, as they appear in Result.Failure and in the dead-letter
// header fn_failure.
const (
	FailureError     = "error"     // the handler returned an error
	FailurePanic     = "panic"     // the handler panicked
	FailureTimeout   = "timeout"   // the handler overran its timeout
	FailurePermanent = "permanent" // the handler returned Permanent(err)
	FailureDecode    = "decode"    // the payload did not decode
)

// Result is the outcome of one invocation and the events it emitted.
type Result struct {
	Outcome Outcome
	// Err is the failure, nil on OutcomeAck.
	Err error
	// Failure classifies Err: one of the Failure constants.
	Failure string
	// Events are the events the handler emitted; empty unless acked.
	Events   []Event
	Duration time.Duration
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure that retrying cannot fix: the message is
// dead-lettered at once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// PanicError is the failure of a handler that panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Backoff is the wait before the attempt after `failed` failed attempts:
// 200ms doubling per attempt, capped at 30s.
func Backoff(failed int) time.Duration {
	if failed < 1 {
		return 0
	}
	d := 200 * time.Millisecond
	for i := 1; i < failed && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}
