package fn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microfn/microfn/codec"
	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/fnproto"
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
		failure delivery.Failure
	}{
		{"ack", func(context.Context, order) error { return nil }, `{"id":"1"}`, nil, ""},
		{"error", func(context.Context, order) error { return boom }, `{"id":"1"}`, nil, delivery.FailureError},
		{"permanent", func(context.Context, order) error { return Permanent(boom) }, `{"id":"1"}`, nil, delivery.FailurePermanent},
		{"wrapped permanent", func(context.Context, order) error { return errors.Join(Permanent(boom)) }, `{"id":"1"}`, nil, delivery.FailurePermanent},
		{"panic", func(context.Context, order) error { panic("kaput") }, `{"id":"1"}`, nil, delivery.FailurePanic},
		{"undecodable", func(context.Context, order) error { return nil }, `{"id":`, nil, delivery.FailureDecode},
		{"timeout", func(ctx context.Context, _ order) error { <-ctx.Done(); return ctx.Err() },
			`{"id":"1"}`, []Option{Timeout(20 * time.Millisecond)}, delivery.FailureTimeout},
		{"timeout of a handler ignoring ctx", func(context.Context, order) error { time.Sleep(time.Hour); return nil },
			`{"id":"1"}`, []Option{Timeout(20 * time.Millisecond)}, delivery.FailureTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := New("f", "orders", c.h, c.opts...)
			r := f.invoke(context.Background(), msg(c.value))
			if r.Failure != c.failure {
				t.Fatalf("failure %q (err %v), want %q", r.Failure, r.Err, c.failure)
			}
			if (r.Err == nil) != (c.failure == "") {
				t.Fatalf("err = %v with failure %q", r.Err, r.Failure)
			}
		})
	}
}

func TestRawPayloadBypassesCodec(t *testing.T) {
	var got []byte
	f := New("f", "t", func(_ context.Context, b []byte) error { got = b; return nil })
	in := []byte{0, 0xff, '{'}
	if r := f.invoke(context.Background(), msg(string(in))); !r.OK() {
		t.Fatalf("failure %q: %v", r.Failure, r.Err)
	}
	if !bytes.Equal(got, in) || f.payloadCodec().Name() != "raw" {
		t.Fatalf("got %x with codec %s", got, f.payloadCodec().Name())
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
	r := f.invoke(context.Background(), m)
	if !r.OK() || len(r.Events) != 1 {
		t.Fatalf("failure %q, events %d, err %v", r.Failure, len(r.Events), r.Err)
	}
	e := r.Events[0]
	if e.Topic != "invoices" || string(e.Key) != "a" || e.Headers["h"] != "v" ||
		e.Headers[codec.HeaderContentType] != "application/json" || string(e.Value) != `{"order":"a"}` {
		t.Fatalf("event = %+v (value %s)", e, e.Value)
	}
	m = msg(`{"id":"fail"}`)
	m.Offset = 7
	if r := f.invoke(context.Background(), m); r.Failure != delivery.FailureError || len(r.Events) != 0 {
		t.Fatalf("failed invocation: failure %q with %d events", r.Failure, len(r.Events))
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
	r := f.invoke(context.Background(), msg(""))
	if r.Failure != delivery.FailureTimeout || len(r.Events) != 0 {
		t.Fatalf("failure %q, events %d", r.Failure, len(r.Events))
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
	got, _ := json.Marshal(manifest([]*Func{f, New("g", "t", func(context.Context, []byte) error { return nil })}))
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

func TestRunUsageErrors(t *testing.T) {
	registry.Lock()
	saved := registry.funcs
	registry.funcs = nil
	registry.Unlock()
	t.Cleanup(func() { registry.Lock(); registry.funcs = saved; registry.Unlock() })
	run1 := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(args, func(string) string { return "" }, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, e := run1(); code != fnproto.ExitUsage || !strings.Contains(e, "declares no subscribers") {
		t.Fatalf("no subscribers: %d %q", code, e)
	}
	h := func(context.Context, order) error { return nil }
	Subscribe("a", "t1", h)
	Subscribe("b", "t2", h)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--nope"}, fnproto.ExitUsage, "flag provided but not defined"},
		{[]string{"extra"}, fnproto.ExitUsage, `unexpected argument "extra"`},
		{nil, fnproto.ExitUsage, "declares 2 subscribers (a, b)"},
		{[]string{"--subscriber", "zz"}, fnproto.ExitUsage, `unknown subscriber "zz" (this binary declares: a, b)`},
		{[]string{"--subscriber", "a", "--brokers", "nocolon"}, fnproto.ExitUsage, "invalid broker address"},
		{[]string{"--subscriber", "a", "--tls-ca", "/ca.pem"}, fnproto.ExitUsage, `add import _ "github.com/microfn/microfn/fn/secure"`},
		{[]string{"--subscriber", "a", "--sasl-mechanism", "scram-sha-512", "--sasl-user", "u", "--sasl-password-file", pw},
			fnproto.ExitUsage, `this binary has no SCRAM: add import _ "github.com/microfn/microfn/fn/secure"`},
		{[]string{"--subscriber", "a", "--sasl-mechanism", "plain", "--sasl-user", "u"}, fnproto.ExitUsage, "needs a password"},
		{[]string{"--subscriber", "a", "--sasl-mechanism", "gssapi", "--sasl-user", "u"}, fnproto.ExitUsage, "unknown SASL mechanism"},
	}
	for _, c := range cases {
		code, _, e := run1(c.args...)
		if code != c.code || !strings.Contains(e, c.want) || strings.Count(e, "\n") != 1 {
			t.Errorf("run %v = %d %q, want %d and one line containing %q", c.args, code, e, c.code, c.want)
		}
	}
	code, out, _ := run1("--describe")
	var m fnproto.Manifest
	if code != fnproto.ExitOK || json.Unmarshal([]byte(out), &m) != nil || len(m.Subscribers) != 2 {
		t.Fatalf("describe: %d %q", code, out)
	}
	Subscribe("a", "t3", h)
	if code, _, e := run1("--describe"); code != fnproto.ExitUsage || !strings.Contains(e, `subscriber "a": declared twice`) {
		t.Fatalf("duplicate: %d %q", code, e)
	}
}
