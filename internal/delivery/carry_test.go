package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/microfn/microfn/internal/attempts"
)

// recordingHost is a Host that records what Carry asks of it; send
// decides each Send's answer.
type recordingHost struct {
	calls []string
	sent  []Record
	send  func(n int, rs []Record) ([]Record, error)
	err   error // Finish's and Retry's
}

func (h *recordingHost) Send(_ context.Context, rs []Record) ([]Record, error) {
	h.calls = append(h.calls, fmt.Sprintf("send %d", len(rs)))
	if h.send != nil {
		if unsent, err := h.send(len(h.calls), rs); err != nil {
			return unsent, err
		}
	}
	h.sent = append(h.sent, rs...)
	return nil, nil
}

func (h *recordingHost) Finish(context.Context) error {
	h.calls = append(h.calls, "finish")
	return h.err
}

func (h *recordingHost) Retry(_ context.Context, failed int, wait time.Duration) error {
	h.calls = append(h.calls, fmt.Sprintf("retry %d", failed))
	if wait <= 0 || wait > Backoff(failed)*2 {
		return fmt.Errorf("wait %v after %d failures", wait, failed)
	}
	return h.err
}

func TestCarry(t *testing.T) {
	boom := errors.New("boom")
	event := Record{Topic: "out", Value: []byte("e")}
	msg := Message{Topic: "in", Partition: 1, Offset: 7, Key: []byte("k"), Value: []byte("v")}
	p := Policy{Function: "f", DeadLetter: "in.dlq", MaxAttempts: 3}
	cases := []struct {
		name    string
		attempt int
		r       Result
		send    func(n int, rs []Record) ([]Record, error)
		action  Action
		failure Failure
		calls   string
		sent    []string // topics stored
	}{
		{name: "ack publishes the events then finishes", attempt: 1, r: Result{Events: []Record{event, event}},
			action: Ack, calls: "[send 2 finish]", sent: []string{"out", "out"}},
		{name: "ack without events finishes", attempt: 1, action: Ack, calls: "[finish]"},
		{name: "a failure with attempts left retries", attempt: 2, r: Failed(FailureError, boom),
			action: Retry, failure: FailureError, calls: "[retry 2]"},
		{name: "the last attempt's failure dead-letters", attempt: 3, r: Failed(FailureTimeout, boom),
			action: DeadLetter, failure: FailureTimeout, calls: "[send 1 finish]", sent: []string{"in.dlq"}},
		{name: "a permanent failure dead-letters at once", attempt: 1, r: Failed(FailurePermanent, boom),
			action: DeadLetter, failure: FailurePermanent, calls: "[send 1 finish]", sent: []string{"in.dlq"}},
		{name: "events refused for good dead-letter the message", attempt: 1, r: Result{Events: []Record{event}},
			send: func(n int, rs []Record) ([]Record, error) {
				if n == 1 {
					return rs, Refused(errors.New("MESSAGE_TOO_LARGE"))
				}
				return nil, nil
			},
			action: DeadLetter, failure: FailurePublish, calls: "[send 1 send 1 finish]", sent: []string{"in.dlq"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &recordingHost{send: c.send}
			out, err := Carry(context.Background(), h, p, Attempt{Message: msg, Number: c.attempt, Result: c.r})
			if err != nil {
				t.Fatal(err)
			}
			if out.Action != c.action || out.Result.Failure != c.failure || fmt.Sprint(h.calls) != c.calls {
				t.Fatalf("%v (%q), calls %v; want %v (%q), calls %v", out.Action, out.Result.Failure, h.calls, c.action, c.failure, c.calls)
			}
			var topics []string
			for _, r := range h.sent {
				topics = append(topics, r.Topic)
			}
			if fmt.Sprint(topics) != fmt.Sprint(c.sent) {
				t.Fatalf("stored %v, want %v", topics, c.sent)
			}
			if c.action == DeadLetter {
				dl := h.sent[len(h.sent)-1]
				if out.DeadLetter == nil || dl.Headers[HeaderFailure] != string(c.failure) || dl.Headers[HeaderAttempts] != fmt.Sprint(c.attempt) ||
					dl.Headers[HeaderFunction] != "f" || dl.Headers[HeaderOffset] != "7" || string(dl.Key) != "k" {
					t.Fatalf("dead letter %+v (outcome's %+v)", dl, out.DeadLetter)
				}
			}
		})
	}
}

func TestCarryCommitsNothingWhenTheHostGivesTheMessageUp(t *testing.T) {
	for _, r := range []Result{{Events: []Record{{Topic: "out"}}}, Failed(FailurePermanent, errors.New("bad"))} {
		ctx, cancel := context.WithCancel(context.Background())
		h := &recordingHost{send: func(n int, rs []Record) ([]Record, error) {
			if n == 2 {
				cancel() // the partition went elsewhere while the broker was down
			}
			return rs, errors.New("broker down")
		}}
		_, err := Carry(ctx, h, Policy{DeadLetter: "dlq", MaxAttempts: 1}, Attempt{Number: 1, Result: r})
		if !errors.Is(err, ErrNotFinished) || strings.Contains(fmt.Sprint(h.calls), "finish") {
			t.Fatalf("%v: err %v, calls %v; want ErrNotFinished and no finish", r.Failure, err, h.calls)
		}
	}
}

func TestCarryPassesOnTheHostsErrors(t *testing.T) {
	bad := errors.New("commit refused")
	for _, r := range []Result{{}, Failed(FailureError, bad)} {
		h := &recordingHost{err: bad}
		if _, err := Carry(context.Background(), h, Policy{DeadLetter: "dlq", MaxAttempts: 3}, Attempt{Number: 1, Result: r}); !errors.Is(err, bad) {
			t.Fatalf("%q: err %v, want the host's", r.Failure, err)
		}
	}
}

// A dead letter carries how the attempt's process ended: Exit is asked
// only when one is built.
func TestCarryAsksForTheProcessExitOnlyForADeadLetter(t *testing.T) {
	asked := 0
	exit := func() *Exit { asked++; return &Exit{Code: 2, Stderr: "oops"} }
	Carry(context.Background(), &recordingHost{}, Policy{MaxAttempts: 2}, Attempt{Number: 1, Result: Result{}, Exit: exit})
	Carry(context.Background(), &recordingHost{}, Policy{MaxAttempts: 2}, Attempt{Number: 1, Result: Failed(FailureCrash, errors.New("x")), Exit: exit})
	if asked != 0 {
		t.Fatalf("Exit asked %d times for an ack and a retry", asked)
	}
	h := &recordingHost{}
	Carry(context.Background(), h, Policy{DeadLetter: "dlq", MaxAttempts: 2}, Attempt{Number: 2, Result: Failed(FailureCrash, errors.New("x")), Exit: exit})
	if asked != 1 || h.sent[0].Headers[HeaderExitCode] != "2" || h.sent[0].Headers[HeaderStderr] != "oops" {
		t.Fatalf("asked %d times; dead letter headers %v", asked, h.sent[0].Headers)
	}
}

func TestResume(t *testing.T) {
	last := time.Now().Add(-100 * time.Millisecond)
	cases := []struct {
		name    string
		prev    attempts.Entry
		next    int
		crashed bool
		waits   bool
	}{
		{name: "a new message", next: 1},
		{name: "after a failed attempt", prev: attempts.Entry{Failed: 1, Last: last}, next: 2, waits: true},
		{name: "after a run that crashed", prev: attempts.Entry{Failed: 0, Last: last, Running: true}, next: 2, waits: true},
		{name: "after the last allowed run crashed", prev: attempts.Entry{Failed: 2, Last: last, Running: true}, next: 3, crashed: true},
		{name: "after every attempt failed", prev: attempts.Entry{Failed: 3, Last: last}, next: 4, waits: true},
	}
	for _, c := range cases {
		r := Resume(c.prev, 3)
		if r.Next != c.next || (r.Crashed != nil) != c.crashed || r.At.After(last) != c.waits {
			t.Errorf("%s: %+v; want attempt %d, crashed %v, waiting %v", c.name, r, c.next, c.crashed, c.waits)
		}
		if c.crashed && (r.Crashed.Failure != FailureCrash || Decide(*r.Crashed, r.Next, 3) != DeadLetter) {
			t.Errorf("%s: crashed result %+v is not dead-lettered as a crash", c.name, r.Crashed)
		}
	}
}
