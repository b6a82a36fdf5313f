package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestPublishFlags(t *testing.T) {
	cases := []struct {
		args    []string
		wantErr string
		check   func(PublishOptions) bool
	}{
		{[]string{"t", "v", "--key", "k", "-H", "a=b", "-H", "c="}, "", func(o PublishOptions) bool {
			return o.Topic == "t" && *o.Value == "v" && *o.Key == "k" && o.Headers["a"] == "b" && o.Headers["c"] == "" && len(o.Headers) == 2
		}},
		{[]string{"t"}, "", func(o PublishOptions) bool { return o.Value == nil && o.Key == nil }},
		{[]string{"t", "--key", ""}, "", func(o PublishOptions) bool { return o.Key != nil && *o.Key == "" }},
		{[]string{"t", "--null"}, "", func(o PublishOptions) bool { return o.Null }},
		{[]string{}, "want TOPIC", nil},
		{[]string{"t", "v", "x"}, "want TOPIC", nil},
		{[]string{"t", "v", "--header", "novalue"}, `malformed --header "novalue"`, nil},
		{[]string{"t", "v", "--header", "=v"}, `malformed --header "=v"`, nil},
		{[]string{"t", "v", "--null"}, "exclude each other", nil},
		{[]string{"t", "v", "--count", "0"}, "--count must be at least 1", nil},
	}
	for _, c := range cases {
		var got PublishOptions
		cmd := newCmdPublish(IO{}, func(_ context.Context, o PublishOptions) error { got = o; return nil })
		cmd.SetArgs(c.args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.Execute()
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%v: err %v, want %q", c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil || !c.check(got) {
			t.Errorf("%v: err %v, options %+v", c.args, err, got)
		}
	}
}

func TestTailFlags(t *testing.T) {
	var got TailOptions
	cmd := newCmdTail(IO{}, func(_ context.Context, o TailOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"t.dlq", "--from-beginning", "-n", "5", "-o", "json"})
	if err := cmd.Execute(); err != nil || got.Topic != "t.dlq" || !got.FromBeginning || got.Max != 5 || got.Output != "json" {
		t.Fatalf("err %v, options %+v", err, got)
	}
	cmd = newCmdTail(IO{}, func(context.Context, TailOptions) error { return nil })
	if err := parse(t, cmd, "t", "-o", "yaml"); err == nil || !strings.Contains(err.Error(), "-o must be text or json") {
		t.Fatalf("err %v", err)
	}
}

func TestBenchFlags(t *testing.T) {
	var got BenchOptions
	cmd := newCmdBench(IO{}, func(_ context.Context, o BenchOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"./examples/greeter", "--pool", "4", "--order", "partition", "-o", "json"})
	if err := cmd.Execute(); err != nil || got.Path != "./examples/greeter" || got.Pool != 4 || got.Order != "partition" || got.Messages != 600 {
		t.Fatalf("err %v, options %+v", err, got)
	}
	cmd = newCmdBench(IO{}, func(_ context.Context, o BenchOptions) error { got = o; return nil })
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil || got.Path != trivialPkg {
		t.Fatalf("default path %q, err %v", got.Path, err)
	}
	for _, args := range [][]string{{"--pool", "0"}, {"--order", "random"}, {"--messages", "1"}, {"--rounds", "0"}, {"-o", "xml"}, {"a", "b"}} {
		cmd := newCmdBench(IO{}, func(context.Context, BenchOptions) error { return nil })
		cmd.SetArgs(args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		var ue usageError
		if err := cmd.Execute(); !errors.As(err, &ue) {
			t.Errorf("bench %v: err %v, want a usage error", args, err)
		}
	}
}

func TestInvokeFlags(t *testing.T) {
	var got InvokeOptions
	cmd := newCmdInvoke(IO{}, func(_ context.Context, o InvokeOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"./f", "v", "--key", "k", "-H", "a=b", "--attempt", "3"})
	if err := cmd.Execute(); err != nil || got.Path != "./f" || *got.Value != "v" || *got.Key != "k" || got.Headers["a"] != "b" || got.Attempt != 3 {
		t.Fatalf("err %v, options %+v", err, got)
	}
	for _, args := range [][]string{{}, {"./f", "--attempt", "0"}, {"./f", "--header", "x"}, {"./f", "--timeout", "0s"}, {"./f", "-o", "xml"}} {
		cmd := newCmdInvoke(IO{}, func(context.Context, InvokeOptions) error { return nil })
		cmd.SetArgs(args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		var ue usageError
		if err := cmd.Execute(); !errors.As(err, &ue) {
			t.Errorf("invoke %v: err %v, want a usage error", args, err)
		}
	}
}
