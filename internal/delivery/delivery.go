// Package delivery owns microfn's delivery semantics: what becomes of a
// message after one attempt to handle it. Every way a function runs (the
// restarter, standalone mode, fn.Serve, fntest, fnctl invoke) is a host
// that runs attempts and carries out this package's decisions, so the
// semantics are written once:
//
//   - An attempt succeeds or fails with a Failure kind.
//   - Decide says what follows: acknowledge (publish the handler's
//     events, then commit), retry after Backoff, or dead-letter (publish a
//     dead letter built by NewDeadLetter, then commit).
//   - Records are published with Publish, which retries what the broker
//     may accept later and stops on what it refuses for good.
//
// Events of a successful attempt. A handler's events are published after
// it succeeds and before its message is committed; a failed attempt
// publishes nothing. When publishing them fails, the handler has still
// succeeded: the host publishes the events again, not the handler, and
// the failure does not count as an attempt. Only the events not yet
// stored are sent again, so while the host holds the message no event is
// published twice. When the host loses the message before its events are
// stored (it stops, crashes or loses the partition), the message is
// delivered again and the handler runs again: then events that were
// stored the first time are published a second time. Delivery is at
// least once. When the broker refuses the events for good (a record too
// large, an invalid topic, no permission), publishing again cannot help
// and the message is dead-lettered with FailurePublish, so that it never
// holds back its key for ever.
//
// A dead letter is the original record (key, value, headers) with fn_*
// headers naming the failure; if publishing it fails, the message is not
// committed.
package delivery

import (
	"errors"
	"time"

	"github.com/microfn/microfn/internal/backoff"
)

// Failure is the kind of a failed attempt. Its value is the fn_failure
// header of a dead letter.
type Failure string

// Failure kinds. An attempt that fails with a retryable kind is retried
// until the subscriber's attempts are used up; the others are
// dead-lettered at once.
const (
	// FailureError: the handler returned an error.
	FailureError Failure = "error"
	// FailurePanic: the handler panicked.
	FailurePanic Failure = "panic"
	// FailureTimeout: the attempt overran its deadline. Under the
	// restarter the function's process group was then terminated.
	FailureTimeout Failure = "timeout"
	// FailureDecode: the payload could not be decoded. Not retried.
	FailureDecode Failure = "decode"
	// FailurePermanent: the handler returned fn.Permanent(err). Not
	// retried.
	FailurePermanent Failure = "permanent"
	// FailureCrash: a function process built with fn exited before it
	// reported an outcome (fn_exit_code has its exit code).
	FailureCrash Failure = "crash"
	// FailureSignal: a function process was killed by a signal that the
	// restarter did not send (fn_signal names it).
	FailureSignal Failure = "signal"
	// FailureExit: a plain executable exited with a non-zero code
	// (fn_exit_code). A plain executable reports nothing but its exit.
	FailureExit Failure = "exit"
	// FailureMemory: the process went over its memory limit.
	FailureMemory Failure = "memory"
	// FailureStart: the process could not be started.
	FailureStart Failure = "start"
	// FailurePublish: the handler succeeded, but the broker refused its
	// events for good. Not retried: running the handler again would emit
	// the same records.
	FailurePublish Failure = "publish"
)

// Failures lists every kind, in the order of the documentation.
var Failures = []Failure{FailureError, FailurePanic, FailureTimeout, FailureDecode, FailurePermanent,
	FailureCrash, FailureSignal, FailureExit, FailureMemory, FailureStart, FailurePublish}

// Retryable reports whether another attempt may succeed where this kind
// of failure happened.
func (f Failure) Retryable() bool {
	switch f {
	case FailureDecode, FailurePermanent, FailurePublish:
		return false
	}
	return true
}

// Reason is why a message was dead-lettered: the fn_reason header.
type Reason string

// Reasons for dead-lettering.
const (
	ReasonExhausted Reason = "exhausted" // every attempt failed
	ReasonPermanent Reason = "permanent" // the handler returned fn.Permanent(err)
	ReasonDecode    Reason = "decode"    // the payload cannot be decoded
	ReasonPublish   Reason = "publish"   // the broker refused the handler's events for good
)

// ReasonFor is the reason a message that failed with f is dead-lettered.
func ReasonFor(f Failure) Reason {
	switch f {
	case FailurePermanent:
		return ReasonPermanent
	case FailureDecode:
		return ReasonDecode
	case FailurePublish:
		return ReasonPublish
	}
	return ReasonExhausted
}

// Result is the outcome of one attempt.
type Result struct {
	// Failure is empty when the attempt succeeded.
	Failure Failure
	// Err describes the failure; nil on success.
	Err error
	// Events are the records the handler emitted; only a successful
	// attempt has any.
	Events []Record
	// Duration is how long the attempt took.
	Duration time.Duration
	// Process describes how a function process ended, when the attempt
	// ran in one and the process itself failed; nil otherwise.
	Process *Exit
}

// OK reports whether the attempt succeeded.
func (r Result) OK() bool { return r.Failure == "" }

// Failed returns the result of an attempt that failed with f and err.
func Failed(f Failure, err error) Result { return Result{Failure: f, Err: err} }

// Exit is how a function process ended.
type Exit struct {
	// Code is the exit code, or -1 when a signal ended the process.
	Code int
	// Signal names the signal that ended it ("SIGKILL"), if one did.
	Signal string
	// Stderr is the head and tail of what the process wrote to stderr.
	Stderr string
	// MaxRSS is the process's peak resident memory in bytes, when known.
	MaxRSS int64
}

// Action is what a host does with a message after an attempt.
type Action int

const (
	// Ack: publish the attempt's events, then commit the message.
	Ack Action = iota
	// Retry: record the failed attempt, wait Backoff(attempt), try again.
	Retry
	// DeadLetter: publish the dead letter, then commit the message.
	DeadLetter
)

func (a Action) String() string {
	switch a {
	case Ack:
		return "ack"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead-letter"
	}
	return "Action(?)"
}

// Decide returns what follows attempt number attempt (1 for the first
// delivery) of a message whose subscriber allows maxAttempts attempts.
func Decide(r Result, attempt, maxAttempts int) Action {
	switch {
	case r.OK():
		return Ack
	case !r.Failure.Retryable():
		return DeadLetter
	case attempt >= maxAttempts:
		return DeadLetter
	}
	return Retry
}

// Backoff is the wait before the attempt that follows failed failed
// attempts, drawn from RetryBackoff: 200ms doubling, capped at 30s, each
// wait between half and all of that (jitter), so that messages that
// failed together are not all tried again at the same moment.
func Backoff(failed int) time.Duration { return RetryBackoff.Wait(failed) }

// RetryBackoff is the policy of Backoff.
var RetryBackoff = backoff.Policy{Min: 200 * time.Millisecond, Max: MaxBackoff}

// MaxBackoff caps Backoff.
const MaxBackoff = 30 * time.Second

// Defaults of a subscriber's settings.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMaxAttempts = 3
	// DeadLetterSuffix is appended to a topic to name its default
	// dead-letter topic.
	DeadLetterSuffix = ".dlq"
)

// ErrRefused marks a publish error as permanent: the broker refused the
// records themselves (too large, invalid topic, not authorised), so
// sending them again cannot succeed. Hosts wrap their client's errors
// with Refused.
var ErrRefused = errors.New("refused by the broker")

// Refused marks err as a permanent refusal (errors.Is(err, ErrRefused)).
func Refused(err error) error {
	if err == nil {
		return nil
	}
	return refusedError{err}
}

type refusedError struct{ err error }

func (e refusedError) Error() string   { return e.err.Error() }
func (e refusedError) Unwrap() []error { return []error{e.err, ErrRefused} }
