package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/fnproto"
	"github.com/microfn/microfn/internal/pipe"
	"github.com/microfn/microfn/internal/runner"
)

// InvokeOptions are the flags of `fnctl invoke`.
type InvokeOptions struct {
	IO         IO
	Path       string
	Value      *string // nil: read the value from stdin
	Key        *string
	Headers    map[string]string
	Topic      string
	Subscriber string
	Plain      bool
	Attempt    int
	// MaxAttempts and Timeout override the subscriber's declared ones
	// when not zero.
	MaxAttempts int
	Timeout     time.Duration
	Output      string
}

// invokeFailed is the exit code of an invocation whose outcome is not an
// acknowledgement.
type invokeFailed struct{ outcome string }

func (e invokeFailed) Error() string { return "the function did not acknowledge: " + e.outcome }

func newCmdInvoke(streams IO, run func(context.Context, InvokeOptions) error) *cobra.Command {
	if run == nil {
		run = runInvoke
	}
	opts := InvokeOptions{IO: streams}
	var key string
	var headers []string
	cmd := &cobra.Command{
		Use:   "invoke PATH [VALUE]",
		Short: "Run a function once on one message, locally, with no broker",
		Long: `Run the function at PATH (a Go package, which it builds, or an
executable built with fn; any executable with --plain) once on one
message, exactly as the restarter would, with no broker and no daemon:
VALUE (or all of stdin) is the message value. The subscriber's declared
timeout and attempts apply (--timeout and --attempts override them), and
--attempt says which attempt this is.

It prints what the restarter would do next (ack, retry or dead-letter),
how the attempt failed, and the events the function emitted, which are
not published anywhere. The exit code is 0 when the function
acknowledged, 1 otherwise.`,
		Example: `  fnctl invoke ./examples/greeter '{"name":"ada"}'
  fnctl invoke ./examples/greeter '{"nom":1}' -o json
  echo hello | fnctl invoke --plain ./script.sh`,
		Args: rangeArgs(1, 2, "PATH and an optional VALUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = args[0]
			if len(args) == 2 {
				opts.Value = &args[1]
			}
			if cmd.Flags().Changed("key") {
				opts.Key = &key
			}
			var err error
			if opts.Headers, err = parseHeaders(headers); err != nil {
				return err
			}
			if opts.Attempt < 1 {
				return usagef("--attempt must be at least 1, got %d", opts.Attempt)
			}
			if cmd.Flags().Changed("attempts") && opts.MaxAttempts < 1 {
				return usagef("--attempts must be at least 1, got %d", opts.MaxAttempts)
			}
			if cmd.Flags().Changed("timeout") && opts.Timeout <= 0 {
				return usagef("--timeout must be positive, got %v", opts.Timeout)
			}
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			return run(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&key, "key", "k", "", "message key")
	f.StringArrayVarP(&headers, "header", "H", nil, "message header key=value (repeatable)")
	f.StringVar(&opts.Topic, "topic", "invoke", "the topic the message appears to come from")
	f.StringVar(&opts.Subscriber, "subscriber", "", "the subscriber to run, when the binary declares several")
	f.BoolVar(&opts.Plain, "plain", false, "PATH is any executable: the value on stdin, exit code 0 acknowledges")
	f.IntVar(&opts.Attempt, "attempt", 1, "the attempt number the function sees")
	f.IntVar(&opts.MaxAttempts, "attempts", 0, "attempts before dead-lettering (default: the subscriber's)")
	f.DurationVar(&opts.Timeout, "timeout", 0, "deadline of the invocation (default: the subscriber's)")
	f.StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	return cmd
}

// InvokeResult is what `fnctl invoke -o json` prints. Events are shown as
// `fnctl tail -o json` shows records.
type InvokeResult struct {
	// Outcome is what the restarter would do next: ack, retry or
	// dead-letter.
	Outcome string   `json:"outcome"`
	Failure string   `json:"failure,omitempty"`
	Error   string   `json:"error,omitempty"`
	Events  []Record `json:"events"`
	// DeadLetter is the record the restarter would publish to the
	// dead-letter topic, when Outcome is dead-letter.
	DeadLetter *Record `json:"dead_letter,omitempty"`
}

func runInvoke(ctx context.Context, opts InvokeOptions) error {
	var value []byte
	if opts.Value != nil {
		value = []byte(*opts.Value)
	} else {
		b, err := io.ReadAll(opts.IO.In)
		if err != nil {
			return fmt.Errorf("read the value from stdin: %w", err)
		}
		value = b
	}
	bin, cleanup, err := functionBinary(ctx, opts.Path)
	if err != nil {
		return err
	}
	defer cleanup()

	cfg := runner.Config{Binary: bin, Env: os.Environ(), Plain: opts.Plain, Log: opts.IO.Err}
	timeout, maxAttempts := delivery.DefaultTimeout, delivery.DefaultMaxAttempts
	policy := delivery.Policy{Function: filepath.Base(opts.Path), DeadLetter: opts.Topic + delivery.DeadLetterSuffix}
	if !opts.Plain {
		m, err := describe(ctx, opts.Path, bin)
		var ue usageError
		if errors.As(err, &ue) {
			return usagef("%s is not a function built with microfn's fn package (run any executable with --plain): %w", opts.Path, err)
		} else if err != nil {
			return err
		}
		sub, err := chooseSubscriber(opts.Path, m, opts.Subscriber)
		if err != nil {
			return err
		}
		if d, err := time.ParseDuration(sub.Timeout); err == nil && d > 0 {
			timeout = d
		}
		maxAttempts = sub.MaxAttempts
		policy.Function = sub.Name
		if sub.DeadLetter != "" {
			policy.DeadLetter = sub.DeadLetter
		}
		cfg.Env = append(cfg.Env, fnproto.EnvSubscriber+"="+sub.Name)
	}
	if opts.Timeout > 0 {
		timeout = opts.Timeout
	}
	if opts.MaxAttempts > 0 {
		maxAttempts = opts.MaxAttempts
	}
	m := &pipe.Message{Topic: opts.Topic, Value: value, Timestamp: time.Now(), Attempt: opts.Attempt}
	if opts.Key != nil {
		m.Key = []byte(*opts.Key)
	}
	for k, v := range opts.Headers {
		m.Headers = append(m.Headers, pipe.Header{Key: k, Value: v})
	}
	r, err := invokeOnce(cfg, m, timeout)
	if err != nil {
		return err
	}
	policy.MaxAttempts = maxAttempts
	out := delivery.Rehearse(policy, delivery.Attempt{Message: delivery.Message{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: opts.Headers},
		Number: opts.Attempt, Result: r})
	res := InvokeResult{Outcome: out.Action.String(), Failure: string(out.Result.Failure), Events: []Record{}}
	if out.Result.Err != nil {
		res.Error = out.Result.Err.Error()
	}
	if dl := out.DeadLetter; dl != nil {
		rec := Record{Topic: dl.Topic, Headers: dl.Headers}
		rec.Key, rec.KeyBase64 = textOrBase64(dl.Key)
		rec.Value, rec.ValueBase64 = textOrBase64(dl.Value)
		res.DeadLetter = &rec
	}
	var raw [][]byte
	for _, e := range out.Result.Events {
		rec := Record{Topic: e.Topic, Headers: e.Headers}
		rec.Key, rec.KeyBase64 = textOrBase64(e.Key)
		rec.Value, rec.ValueBase64 = textOrBase64(e.Value)
		res.Events = append(res.Events, rec)
		raw = append(raw, e.Key, e.Value)
	}
	if opts.Output == "json" {
		if err := printJSON(opts.IO, res); err != nil {
			return err
		}
	} else {
		line := res.Outcome
		if res.Failure != "" {
			line += fmt.Sprintf(" (%s: %s)", res.Failure, res.Error)
		}
		fmt.Fprintln(opts.IO.Out, line)
		for i, e := range res.Events {
			fmt.Fprintf(opts.IO.Out, "emit %s key=%s %s\n", e.Topic, quoteIfNeeded(raw[2*i]), printableValue(raw[2*i+1]))
		}
	}
	if res.Outcome != delivery.Ack.String() {
		return invokeFailed{res.Outcome}
	}
	return nil
}

// invokeOnce runs one attempt of m as the restarter does, the deadline
// timeout from now.
func invokeOnce(cfg runner.Config, m *pipe.Message, timeout time.Duration) (delivery.Result, error) {
	if cfg.Plain {
		m.Deadline = time.Now().Add(timeout)
		_, r := runner.RunPlain(cfg, m)
		return r, nil
	}
	p, err := runner.Start(cfg)
	if err != nil {
		return delivery.Result{}, err
	}
	if err := p.Ready(); err != nil {
		return delivery.Result{}, err
	}
	p.SetLabel(runner.Label(p.Pid(), m))
	m.Deadline = time.Now().Add(timeout)
	r := p.Run(m)
	if exit := p.Wait(); r.Process == nil && !r.OK() {
		r.Process = exit
	}
	return r, nil
}
