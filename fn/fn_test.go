package fn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/microfn/microfn/codec"
)

type order struct {
	ID string `json:"id"`
}

func msg(value string) *Message {
	return &Message{Topic: "orders", Value: []byte(value), Headers: map[string]string{}, Attempt: 1}
}

func TestInvokeOutcomes(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name    string
		h       func(context.Context, order) error
		value   string
		opts    []Option
		outcome Outcome
		failure string
	}{
		{"ack", func(context.Context, order) error { return nil }, `{"id":"1"}`, nil, OutcomeAck, ""},
		{"error retries", func(context.Context, order) error { return boom }, `{"id":"1"}`, nil, OutcomeRetry, FailureError},
		{"permanent dead-letters", func(context.Context, order) error { return Permanent(boom) }, `{"id":"1"}`, nil, OutcomeDeadLetter, FailurePermanent},
		{"wrapped permanent dead-letters", func(context.Context, order) error { return errors.Join(Permanent(boom)) }, `{"id":"1"}`, nil, OutcomeDeadLetter, FailurePermanent},
		{"panic retries", func(context.Context, order) error { panic("kaput") }, `{"id":"1"}`, nil, OutcomeRetry, FailurePanic},
		{"undecodable dead-letters", func(context.Context, order) error { return nil }, `{"id":`, nil, OutcomeDeadLetter, FailureDecode},
		{"timeout retries", func(ctx context.Context, _ order) error { <-ctx.Done(); return ctx.Err() },
			`{"id":"1"}`, []Option{Timeout(20 * time.Millisecond)}, OutcomeRetry, FailureTimeout},
		{"timeout of a handler ignoring ctx", func(context.Context, order) error { time.Sleep(time.Hour); return nil },
			`{"id":"1"}`, []Option{Timeout(20 * time.Millisecond)}, OutcomeRetry, FailureTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := New("f", "orders", c.h, c.opts...)
			r := f.Invoke(context.Background(), msg(c.value))
			if r.Outcome != c.outcome || r.Failure != c.failure {
				t.Fatalf("outcome %v/%q (err %v), want %v/%q", r.Outcome, r.Failure, r.Err, c.outcome, c.failure)
			}
			if (r.Err == nil) != (c.outcome == OutcomeAck) {
				t.Fatalf("err = %v with outcome %v", r.Err, r.Outcome)
			}
		})
	}
}

func TestRawPayloadBypassesCodec(t *testing.T) {
	var got []byte
	f := New("f", "t", func(_ context.Context, b []byte) error { got = b; return nil })
	in := []byte{0, 0xff, '{'}
	if r := f.Invoke(context.Background(), msg(string(in))); r.Outcome != OutcomeAck {
		t.Fatalf("outcome %v: %v", r.Outcome, r.Err)
	}
	if !bytes.Equal(got, in) || f.CodecName() != "raw" {
		t.Fatalf("got %x with codec %s", got, f.CodecName())
	}
}

func TestEmitOnlyOnSuccessAndOnlyInsideHandler(t *testing.T) {
	f := New("f", "orders", func(ctx context.Context, o order) error {
		if err := Emit(ctx, "invoices", map[string]string{"order": o.ID}, WithKey(o.ID), WithHeader("h", "v")); err != nil {
			return err
		}
		if MessageFrom(ctx).Offset != 7 {
			return errors.New("MessageFrom does not give the message")
		}
		if o.ID == "fail" {
			return errors.New("fail after emitting")
		}
		return nil
	})
	m := msg(`{"id":"a"}`)
	m.Offset = 7
	r := f.Invoke(context.Background(), m)
	if r.Outcome != OutcomeAck || len(r.Events) != 1 {
		t.Fatalf("outcome %v, events %d, err %v", r.Outcome, len(r.Events), r.Err)
	}
	e := r.Events[0]
	if e.Topic != "invoices" || string(e.Key) != "a" || e.Headers["h"] != "v" ||
		e.Headers[codec.HeaderContentType] != "application/json" || string(e.Value) != `{"order":"a"}` {
		t.Fatalf("event = %+v (value %s)", e, e.Value)
	}
	m = msg(`{"id":"fail"}`)
	m.Offset = 7
	if r := f.Invoke(context.Background(), m); r.Outcome != OutcomeRetry || len(r.Events) != 0 {
		t.Fatalf("failed invocation: outcome %v with %d events", r.Outcome, len(r.Events))
	}
	if err := Emit(context.Background(), "x", 1); !errors.Is(err, ErrNoInvocation) {
		t.Fatalf("Emit outside a handler = %v, want ErrNoInvocation", err)
	}
}

func TestEmitAfterTimeoutIsRefused(t *testing.T) {
	late := make(chan error, 1)
	f := New("f", "t", func(ctx context.Context, _ []byte) error {
		<-ctx.Done()
		time.Sleep(10 * time.Millisecond)
		late <- Emit(ctx, "x", []byte("late"))
		return nil
	}, Timeout(10*time.Millisecond))
	r := f.Invoke(context.Background(), msg(""))
	if r.Outcome != OutcomeRetry || len(r.Events) != 0 {
		t.Fatalf("outcome %v, events %d", r.Outcome, len(r.Events))
	}
	select {
	case err := <-late:
		if !errors.Is(err, ErrNoInvocation) {
			t.Fatalf("late Emit = %v, want ErrNoInvocation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not try its late Emit within 5s")
	}
}

func TestOptionsAndManifest(t *testing.T) {
	f := New("bill", "orders", func(context.Context, order) error { return nil },
		Group("billing"), Timeout(5*time.Second), MaxAttempts(5), DeadLetter("orders.failed"))
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(Describe([]*Func{f, New("g", "t", func(context.Context, []byte) error { return nil })}))
	want := `{"protocol":1,"subscribers":[` +
		`{"name":"bill","topic":"orders","group":"billing","codec":"json","timeout":"5s","max_attempts":5,"dead_letter":"orders.failed"},` +
		`{"name":"g","topic":"t","group":"g","codec":"raw","timeout":"30s","max_attempts":3,"dead_letter":"t.dlq"}]}`
	if string(got) != want {
		t.Fatalf("manifest\n got %s\nwant %s", got, want)
	}
}

func TestBadDeclarationsAreErrorsNotPanics(t *testing.T) {
	h := func(context.Context, order) error { return nil }
	for name, f := range map[string]*Func{
		"empty name":   New("", "t", h),
		"empty topic":  New("n", "", h),
		"nil handler":  New[order]("n", "t", nil),
		"zero timeout": New("n", "t", h, Timeout(0)),
		"attempts 0":   New("n", "t", h, MaxAttempts(0)),
		"empty group":  New("n", "t", h, Group("")),
		"empty dlq":    New("n", "t", h, DeadLetter("")),
		"nil codec":    New("n", "t", h, Codec(nil)),
	} {
		if f.Err() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestDeadLetterEventKeepsRecordAndNamesFailure(t *testing.T) {
	f := New("bill", "orders", func(context.Context, order) error { return nil })
	m := &Message{Topic: "orders", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte("v"), Headers: map[string]string{"a": "b"}, Attempt: 3}
	e := f.DeadLetterEvent(m, Result{Outcome: OutcomeRetry, Failure: FailurePanic, Err: errors.New(strings.Repeat("x", 10000))})
	want := map[string]string{HeaderReason: ReasonExhausted, HeaderFailure: FailurePanic, HeaderAttempts: "3",
		HeaderFunction: "bill", HeaderTopic: "orders", HeaderPartition: "2", HeaderOffset: "41", "a": "b"}
	for k, v := range want {
		if e.Headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, e.Headers[k], v)
		}
	}
	if e.Topic != "orders.dlq" || string(e.Key) != "k" || string(e.Value) != "v" || len(e.Headers[HeaderError]) != maxErrorHeader {
		t.Fatalf("event %+v", e)
	}
	if m.Headers[HeaderReason] != "" {
		t.Fatal("DeadLetterEvent changed the original message's headers")
	}
}

func TestBackoff(t *testing.T) {
	for failed, want := range map[int]time.Duration{0: 0, 1: 200 * time.Millisecond, 2: 400 * time.Millisecond, 20: 30 * time.Second} {
		if got := Backoff(failed); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", failed, got, want)
		}
	}
}

func TestRunUsageErrors(t *testing.T) {
	registry.Lock()
	saved := registry.funcs
	registry.funcs = nil
	registry.Unlock()
	t.Cleanup(func() { registry.Lock(); registry.funcs = saved; registry.Unlock() })
	run1 := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, e := run1(); code != ExitUsage || !strings.Contains(e, "declares no subscribers") {
		t.Fatalf("no subscribers: %d %q", code, e)
	}
	h := func(context.Context, order) error { return nil }
	Subscribe("a", "t1", h)
	Subscribe("b", "t2", h)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--nope"}, ExitUsage, "flag provided but not defined"},
		{[]string{"extra"}, ExitUsage, `unexpected argument "extra"`},
		{nil, ExitUsage, "declares 2 subscribers (a, b)"},
		{[]string{"--subscriber", "zz"}, ExitUsage, `unknown subscriber "zz" (this binary declares: a, b)`},
		{[]string{"--subscriber", "a", "--brokers", "nocolon"}, ExitUsage, "invalid broker address"},
	}
	for _, c := range cases {
		code, _, e := run1(c.args...)
		if code != c.code || !strings.Contains(e, c.want) || strings.Count(e, "\n") != 1 {
			t.Errorf("run %v = %d %q, want %d and one line containing %q", c.args, code, e, c.code, c.want)
		}
	}
	code, out, _ := run1("--describe")
	var m Manifest
	if code != ExitOK || json.Unmarshal([]byte(out), &m) != nil || len(m.Subscribers) != 2 {
		t.Fatalf("describe: %d %q", code, out)
	}
	Subscribe("a", "t3", h)
	if code, _, e := run1("--describe"); code != ExitUsage || !strings.Contains(e, `subscriber "a": declared twice`) {
		t.Fatalf("duplicate: %d %q", code, e)
	}
}
