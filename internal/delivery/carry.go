package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/microfn/microfn/internal/attempts"
)

// Host is what a host can do with a message once an attempt has ended:
// all that Carry needs to carry out what Decide says.
type Host interface {
	// Send stores records at the broker: see SendFunc.
	Send(ctx context.Context, records []Record) (unsent []Record, err error)
	// Finish commits the message, or arranges its commit: it was
	// acknowledged (its events are stored) or dead-lettered (its dead
	// letter is stored), and must not run again.
	Finish(ctx context.Context) error
	// Retry records that failed attempts of the message have failed, so
	// that a restart of the host still counts them, and arranges for
	// attempt failed+1 to start after wait.
	Retry(ctx context.Context, failed int, wait time.Duration) error
}

// Policy is what a subscriber's settings say about carrying out.
type Policy struct {
	// Function names the subscriber or deployment in dead letters.
	Function string
	// DeadLetter is the dead-letter topic.
	DeadLetter string
	// MaxAttempts is how many attempts a message gets.
	MaxAttempts int
	// Log is told what was carried out: failures, retries and dead
	// letters at Warn and above, acknowledgements at Debug. Nil
	// discards.
	Log *slog.Logger
}

// Attempt is one ended attempt of a message.
type Attempt struct {
	Message Message
	// Number is the attempt's number, 1 for the first delivery.
	Number int
	Result Result
	// Exit, when not nil, waits for the attempt's process to end and
	// says how it ended; it is called only when a dead letter is built
	// for a result without Process, so that the dead letter has all the
	// process wrote.
	Exit func() *Exit
}

// Outcome is what Carry carried out.
type Outcome struct {
	// Action is what was done: Ack, Retry or DeadLetter.
	Action Action
	// Result is the attempt's result as carried out: an acknowledged
	// attempt whose events the broker refused for good is dead-lettered
	// as a FailurePublish.
	Result Result
	// DeadLetter is the stored dead letter, when Action is DeadLetter.
	DeadLetter *Record
}

// ErrNotFinished means the host gave the message up (ctx ended) before
// its events or its dead letter were stored: it is not committed, and
// whoever holds it next runs it again.
var ErrNotFinished = errors.New("the message was given up before it was finished")

// Carry carries out what follows attempt a, through h:
//
//   - Ack: publish the attempt's events (again and again until stored, see
//     Publish), then h.Finish. A refusal for good dead-letters the message
//     with FailurePublish instead.
//   - Retry: h.Retry with the wait of Backoff.
//   - DeadLetter: publish the dead letter (until stored, see
//     PublishDeadLetter), then h.Finish.
//
// ctx is the host's hold on the message: when it ends before the events
// or the dead letter are stored, Carry returns an error matching
// ErrNotFinished and nothing is committed. An error of h.Finish or
// h.Retry is returned as it is.
func Carry(ctx context.Context, h Host, p Policy, a Attempt) (Outcome, error) {
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := a.Message
	log = log.With("partition", m.Partition, "offset", m.Offset, "attempt", a.Number)
	r := a.Result
	action := Decide(r, a.Number, p.MaxAttempts)
	if action == Ack {
		err := Publish(ctx, r.Events, h.Send, func(err error, wait time.Duration) {
			log.Warn("publishing the handler's events failed; publishing them again", "err", err, "retry_in", wait)
		})
		switch {
		case err == nil:
			if err := h.Finish(ctx); err != nil {
				return Outcome{Action: Ack, Result: r}, err
			}
			log.Debug("acked", "events", len(r.Events))
			return Outcome{Action: Ack, Result: r}, nil
		case !errors.Is(err, ErrRefused):
			log.Warn("the handler's events are not all published; not committing: the message will run again", "err", err)
			return Outcome{Action: Ack, Result: r}, fmt.Errorf("%w: publish the handler's events: %v", ErrNotFinished, err)
		}
		r, action = Failed(FailurePublish, fmt.Errorf("publish the handler's events: %w", err)), DeadLetter
	}
	if action == Retry {
		wait := Backoff(a.Number)
		log.Warn("attempt failed; will retry", "failure", r.Failure, "err", r.Err, "max_attempts", p.MaxAttempts, "retry_in", wait)
		return Outcome{Action: Retry, Result: r}, h.Retry(ctx, a.Number, wait)
	}
	if r.Process == nil && a.Exit != nil {
		r.Process = a.Exit()
	}
	dl := NewDeadLetter(p.DeadLetter, p.Function, m, a.Number, r, time.Now())
	out := Outcome{Action: DeadLetter, Result: r, DeadLetter: &dl}
	if err := PublishDeadLetter(ctx, dl, h.Send, func(err error, wait time.Duration) {
		log.Error("dead-letter publish failed; not committing", "dlq", dl.Topic, "err", err, "retry_in", wait)
	}); err != nil {
		log.Warn("the dead letter is not published; not committing: the message will run again", "dlq", dl.Topic, "err", err)
		return out, fmt.Errorf("%w: publish the dead letter to %s: %v", ErrNotFinished, dl.Topic, err)
	}
	if err := h.Finish(ctx); err != nil {
		return out, err
	}
	log.Warn("dead-lettered", "dlq", dl.Topic, "reason", dl.Headers[HeaderReason], "failure", r.Failure, "err", r.Err)
	return out, nil
}

// Resumption is how a host that takes a message up goes on from what the
// message's last holder recorded of it.
type Resumption struct {
	// Next is the number of the attempt to run, 1 for a new message.
	Next int
	// At is when it may start: the backoff after the recorded failures
	// (zero: at once).
	At time.Time
	// Crashed, when not nil, is the result of the recorded attempt that
	// was running when its process died, and was the last one allowed:
	// the host carries it out as attempt Next (a dead letter) instead of
	// running another attempt.
	Crashed *Result
}

// Resume reads prev, the entry the commit metadata has for a message
// (the zero Entry for a new one). An attempt recorded as running whose
// process died (a standalone run that crashed) counts as failed.
func Resume(prev attempts.Entry, maxAttempts int) Resumption {
	failed := prev.Failures()
	if prev.Running {
		r := Failed(FailureCrash, fmt.Errorf("attempt %d ended before it reported an outcome: its process died", failed))
		if Decide(r, failed, maxAttempts) == DeadLetter {
			return Resumption{Next: failed, Crashed: &r}
		}
	}
	var at time.Time
	if failed > 0 {
		at = prev.Last.Add(Backoff(failed))
	}
	return Resumption{Next: failed + 1, At: at}
}

// Rehearse carries out attempt a with nothing stored and nothing
// committed: what a host would do next, with the events it would publish
// or the dead letter. It is for the hosts without a broker, fntest and
// `fnctl invoke`.
func Rehearse(p Policy, a Attempt) Outcome {
	out, _ := Carry(context.Background(), rehearsal{}, p, a)
	return out
}

// rehearsal is a Host that stores nothing.
type rehearsal struct{}

func (rehearsal) Send(context.Context, []Record) ([]Record, error) { return nil, nil }
func (rehearsal) Finish(context.Context) error                     { return nil }
func (rehearsal) Retry(context.Context, int, time.Duration) error  { return nil }
