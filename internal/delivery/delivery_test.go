package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		failure     Failure
		attempt     int
		maxAttempts int
		want        Action
	}{
		{"", 1, 3, Ack},
		{"", 3, 3, Ack},
		{"", 9, 3, Ack}, // an attempt past the limit that succeeds is still an ack
		{FailureError, 1, 3, Retry},
		{FailureError, 2, 3, Retry},
		{FailureError, 3, 3, DeadLetter},
		{FailureError, 4, 3, DeadLetter},
		{FailureError, 1, 1, DeadLetter},
		{FailurePanic, 1, 3, Retry},
		{FailureTimeout, 1, 3, Retry},
		{FailureCrash, 1, 3, Retry},
		{FailureSignal, 1, 3, Retry},
		{FailureExit, 1, 3, Retry},
		{FailureMemory, 1, 3, Retry},
		{FailureStart, 1, 3, Retry},
		{FailureTimeout, 3, 3, DeadLetter},
		{FailureDecode, 1, 3, DeadLetter},
		{FailurePermanent, 1, 3, DeadLetter},
		{FailurePublish, 1, 3, DeadLetter},
	}
	for _, c := range cases {
		r := Result{Failure: c.failure}
		if c.failure != "" {
			r.Err = boom
		}
		if got := Decide(r, c.attempt, c.maxAttempts); got != c.want {
			t.Errorf("Decide(%q, attempt %d of %d) = %v, want %v", c.failure, c.attempt, c.maxAttempts, got, c.want)
		}
	}
}

func TestEveryFailureHasAReason(t *testing.T) {
	want := map[Failure]Reason{FailureDecode: ReasonDecode, FailurePermanent: ReasonPermanent, FailurePublish: ReasonPublish}
	for _, f := range Failures {
		w, ok := want[f]
		if !ok {
			w = ReasonExhausted
		}
		if got := ReasonFor(f); got != w {
			t.Errorf("ReasonFor(%q) = %q, want %q", f, got, w)
		}
		if f.Retryable() != (w == ReasonExhausted) {
			t.Errorf("%q: retryable %v but dead-lettered as %q", f, f.Retryable(), w)
		}
	}
}

func TestBackoff(t *testing.T) {
	for failed, want := range map[int]time.Duration{-1: 0, 0: 0, 1: 200 * time.Millisecond, 2: 400 * time.Millisecond,
		3: 800 * time.Millisecond, 8: 25600 * time.Millisecond, 9: MaxBackoff, 1000: MaxBackoff} {
		if got := Backoff(failed); got > want || got < want/2 {
			t.Errorf("Backoff(%d) = %v, want between %v and %v", failed, got, want/2, want)
		}
	}
}

func TestDeadLetterKeepsTheRecordAndNamesTheFailure(t *testing.T) {
	m := Message{Topic: "orders", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte("v"),
		Headers: map[string]string{"a": "b", "fn_user": "kept"}}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		r       Result
		want    map[string]string
		missing []string
	}{
		{"handler error reported by a process: stderr, no exit code",
			Result{Failure: FailureError, Err: errors.New("boom"), Process: &Exit{Code: 0, Stderr: "log line"}},
			map[string]string{HeaderReason: "exhausted", HeaderFailure: "error", HeaderError: "boom", HeaderStderr: "log line"},
			[]string{HeaderExitCode, HeaderSignal}},
		{"crash: exit code",
			Result{Failure: FailureCrash, Err: errors.New("exit 3"), Process: &Exit{Code: 3, Stderr: "fatal"}},
			map[string]string{HeaderFailure: "crash", HeaderExitCode: "3", HeaderStderr: "fatal"},
			[]string{HeaderSignal}},
		{"signal",
			Result{Failure: FailureSignal, Err: errors.New("killed"), Process: &Exit{Code: -1, Signal: "SIGKILL"}},
			map[string]string{HeaderFailure: "signal", HeaderSignal: "SIGKILL"},
			[]string{HeaderExitCode, HeaderStderr}},
		{"permanent, in process",
			Result{Failure: FailurePermanent, Err: errors.New("bad")},
			map[string]string{HeaderReason: "permanent", HeaderFailure: "permanent"},
			[]string{HeaderExitCode, HeaderSignal, HeaderStderr}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := NewDeadLetter("orders.dlq", "bill", m, 3, c.r, at)
			if rec.Topic != "orders.dlq" || string(rec.Key) != "k" || string(rec.Value) != "v" {
				t.Fatalf("record %+v", rec)
			}
			base := map[string]string{HeaderAttempts: "3", HeaderFunction: "bill", HeaderTopic: "orders",
				HeaderPartition: "2", HeaderOffset: "41", HeaderTime: "2026-11-23T10:00:00Z", "a": "b", "fn_user": "kept"}
			for k, v := range base {
				c.want[k] = v
			}
			for k, v := range c.want {
				if rec.Headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, rec.Headers[k], v)
				}
			}
			for _, k := range c.missing {
				if v, ok := rec.Headers[k]; ok {
					t.Errorf("header %s = %q, want none", k, v)
				}
			}
			info, ok := ParseDeadLetter(rec.Headers)
			if !ok || info.Topic != "orders" || info.Partition != 2 || info.Offset != 41 || info.Attempts != 3 ||
				info.Failure != c.r.Failure || info.Function != "bill" || info.Error != c.r.Err.Error() {
				t.Fatalf("parsed %+v, %v", info, ok)
			}
			if fmt.Sprint(info.Headers) != fmt.Sprint(m.Headers) {
				t.Fatalf("original headers %v, want %v", info.Headers, m.Headers)
			}
		})
	}
	if m.Headers[HeaderReason] != "" {
		t.Fatal("NewDeadLetter changed the message's headers")
	}
}

func TestDeadLetterBoundsItsText(t *testing.T) {
	long := strings.Repeat("x", 3*MaxHeader) + "the end"
	rec := NewDeadLetter("d", "f", Message{Topic: "t"}, 1,
		Result{Failure: FailureCrash, Err: errors.New(long), Process: &Exit{Code: 2, Stderr: long}}, time.Now())
	for _, k := range []string{HeaderError, HeaderStderr} {
		if v := rec.Headers[k]; len(v) != MaxHeader || !strings.HasSuffix(v, "the end") {
			t.Errorf("%s: %d bytes, want %d ending with the end", k, len(v), MaxHeader)
		}
	}
}

func TestParseDeadLetterRefusesOtherRecords(t *testing.T) {
	if _, ok := ParseDeadLetter(map[string]string{"a": "b"}); ok {
		t.Fatal("a record without fn_original_topic parsed as a dead letter")
	}
}

func TestPublishSendsAgainOnlyWhatWasNotStored(t *testing.T) {
	recs := []Record{{Topic: "a"}, {Topic: "b"}, {Topic: "c"}}
	var sent [][]string
	send := func(_ context.Context, rs []Record) ([]Record, error) {
		var names []string
		for _, r := range rs {
			names = append(names, r.Topic)
		}
		sent = append(sent, names)
		switch len(sent) {
		case 1:
			return rs[1:2], errors.New("b: not enough replicas")
		case 2:
			return nil, errors.New("cannot tell")
		}
		return nil, nil
	}
	var waits []time.Duration
	noSleep := func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	if err := publish(context.Background(), recs, send, nil, noSleep, true); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sent) != "[[a b c] [b] [b]]" {
		t.Fatalf("sent %v, want [[a b c] [b] [b]]", sent)
	}
	if len(waits) != 2 || waits[0] > 200*time.Millisecond || waits[1] > 400*time.Millisecond || waits[1] < 200*time.Millisecond {
		t.Fatalf("waits %v, want the backoffs of a first and a second failure (at most 200ms, then 200-400ms)", waits)
	}
}

func TestPublishStopsOnARefusalAndWhenTheHostGivesUp(t *testing.T) {
	refused := func(context.Context, []Record) ([]Record, error) {
		return nil, Refused(errors.New("MESSAGE_TOO_LARGE"))
	}
	noSleep := func(context.Context, time.Duration) error { return nil }
	err := publish(context.Background(), []Record{{}}, refused, nil, noSleep, true)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "MESSAGE_TOO_LARGE") {
		t.Fatalf("refused: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	tries := 0
	failing := func(context.Context, []Record) ([]Record, error) {
		if tries++; tries == 3 {
			cancel()
		}
		return nil, errors.New("broker down")
	}
	err = publish(ctx, []Record{{}}, failing, nil, sleep, true)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "broker down") {
		t.Fatalf("given up: %v", err)
	}
}

func TestPublishDeadLetterKeepsTryingAfterARefusal(t *testing.T) {
	tries := 0
	send := func(context.Context, []Record) ([]Record, error) {
		if tries++; tries < 3 {
			return nil, Refused(errors.New("TOPIC_AUTHORIZATION_FAILED"))
		}
		return nil, nil
	}
	noSleep := func(context.Context, time.Duration) error { return nil }
	if err := publish(context.Background(), []Record{{}}, send, nil, noSleep, false); err != nil || tries != 3 {
		t.Fatalf("err %v after %d tries, want nil after 3", err, tries)
	}
}
