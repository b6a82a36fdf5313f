package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SendFunc stores records at the broker. On failure it returns the
// records it could not store (nil when it cannot tell: then all are sent
// again) and why; a refusal that sending again cannot fix is marked with
// Refused.
type SendFunc func(ctx context.Context, records []Record) (unsent []Record, err error)

// Publish stores records with send: after a failure it waits Backoff and
// sends again the records send reported as not stored, until all are
// stored. It returns nil once they are; an error matching ErrRefused when
// the broker refused one for good; or, when ctx ends first, an error
// wrapping ctx's (some records may then be stored and others not).
// onRetry, if not nil, is told of each failure before the wait.
func Publish(ctx context.Context, records []Record, send SendFunc, onRetry func(err error, wait time.Duration)) error {
	return publish(ctx, records, send, onRetry, sleep, true)
}

// PublishDeadLetter stores a dead letter with send, like Publish, but a
// refusal does not end it: a message whose dead letter is not stored is
// not committed, whatever the reason, so it tries until the dead letter
// is stored or ctx ends (the host gave the message up).
func PublishDeadLetter(ctx context.Context, dl Record, send SendFunc, onRetry func(err error, wait time.Duration)) error {
	return publish(ctx, []Record{dl}, send, onRetry, sleep, false)
}

func publish(ctx context.Context, records []Record, send SendFunc, onRetry func(error, time.Duration),
	sleep func(context.Context, time.Duration) error, stopOnRefusal bool) error {
	for try := 1; len(records) > 0; try++ {
		unsent, err := send(ctx, records)
		if err == nil {
			return nil
		}
		if stopOnRefusal && errors.Is(err, ErrRefused) {
			return err
		}
		if len(unsent) > 0 {
			records = unsent
		}
		wait := Backoff(try)
		if onRetry != nil {
			onRetry(err, wait)
		}
		if serr := sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (last error: %v)", serr, err)
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
