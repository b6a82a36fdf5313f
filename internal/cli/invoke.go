package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/microfn/microfn/fn"
	"github.com/microfn/microfn/internal/oneshot"
	"github.com/microfn/microfn/internal/pipe"
)

// InvokeOptions are the flags of `fnctl invoke`.
type InvokeOptions struct {
	IO      IO
	Path    string
	Value   *string // nil: read the value from stdin
	Key     *string
	Headers map[string]string
	Topic   string
	Attempt int
	Timeout time.Duration
	Output  string
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
		Long: `Run the function at PATH (a Go package, built with -tags microfn_lean, or
an executable built with fn) once on one message, exactly as the
restarter would, with no broker and no daemon: VALUE (or all of stdin)
is the message value. It prints the outcome and the events the function
emitted, which are not published anywhere. The exit code is 0 when the
function acknowledged, 1 otherwise.`,
		Example: `  fnctl invoke ./examples/greeter '{"name":"ada"}'
  fnctl invoke ./examples/greeter '{"nom":1}' -o json`,
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
			if opts.Timeout <= 0 {
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
	f.IntVar(&opts.Attempt, "attempt", 1, "the attempt number the function sees")
	f.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "deadline of the invocation")
	f.StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	return cmd
}

// InvokeResult is what `fnctl invoke -o json` prints. Events are shown as
// `fnctl tail -o json` shows records.
type InvokeResult struct {
	Outcome string   `json:"outcome"`
	Failure string   `json:"failure,omitempty"`
	Error   string   `json:"error,omitempty"`
	Events  []Record `json:"events"`
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

	m := &pipe.Message{Topic: opts.Topic, Value: value, Timestamp: time.Now(), Attempt: opts.Attempt,
		Deadline: time.Now().Add(opts.Timeout)}
	if opts.Key != nil {
		m.Key = []byte(*opts.Key)
	}
	for k, v := range opts.Headers {
		m.Headers = append(m.Headers, pipe.Header{Key: k, Value: v})
	}
	rctx, cancel := context.WithTimeout(ctx, opts.Timeout+5*time.Second)
	defer cancel()
	out, err := oneshot.Run(rctx, bin, m, opts.IO.Err)
	if err != nil {
		return err
	}
	res := InvokeResult{Outcome: fn.Outcome(out.Outcome).String(), Failure: out.Failure, Error: out.Error, Events: []Record{}}
	var raw [][]byte
	for _, e := range out.Events {
		r := Record{Topic: e.Topic, Headers: map[string]string{}}
		for _, h := range e.Headers {
			r.Headers[h.Key] = h.Value
		}
		r.Key, r.KeyBase64 = textOrBase64(e.Key)
		r.Value, r.ValueBase64 = textOrBase64(e.Value)
		res.Events = append(res.Events, r)
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
	if res.Outcome != fn.OutcomeAck.String() {
		return invokeFailed{res.Outcome}
	}
	return nil
}
