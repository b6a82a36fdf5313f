// Package cli implements fnctl's commands. Each command has an Options
// struct, a newCmdX constructor that parses flags into it, and a runX that
// does the work, so tests can drive either half.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/microfn/microfn/internal/kafka"
)

// Exit codes of fnctl.
const (
	ExitOK      = 0
	ExitFailure = 1 // the command could not do its job (broker unreachable, ...)
	ExitUsage   = 2 // bad flags or arguments
)

// IO is the streams a command reads and writes.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// usageError marks bad input from the user: exit code ExitUsage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// Main runs fnctl with args and returns its exit code. Errors are one
// line on stderr.
func Main(args []string, in io.Reader, out, errw io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	streams := IO{In: in, Out: out, Err: errw}
	root := newRootCmd(streams)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(errw, "fnctl: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		return ExitUsage
	}
	return ExitFailure
}

func newRootCmd(streams IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "fnctl",
		Short: "Run, feed and inspect microfn functions on Kafka",
		Long: `fnctl runs, feeds and inspects microfn functions on Kafka.

Commands that talk to Kafka take --brokers host:port,... (or FN_BROKERS);
the default, 127.0.0.1:9092, is the embedded broker of 'fnctl broker'
and 'fnctl up'. Commands that talk to the daemon of 'fnctl up' take
--server host:port (or FN_SERVER; default 127.0.0.1:7077) and --token
(or FN_TOKEN).

Exit codes: 0 success, 1 failure, 2 bad flags or arguments.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newCmdBroker(streams, nil),
		newCmdPublish(streams, nil),
		newCmdTail(streams, nil),
		newCmdBench(streams, nil),
		newCmdInvoke(streams, nil),
		newCmdReplay(streams, nil),
		newCmdUp(streams, nil),
		newCmdDeploy(streams, nil),
		newCmdLs(streams, nil),
		newCmdRm(streams, nil),
		newCmdScale(streams, nil),
		newCmdLogs(streams, nil),
		newCmdStatus(streams, nil),
	)
	return root
}

// exactArgs is cobra.RangeArgs that reports a usage error.
func rangeArgs(lo, hi int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usagef("want %s, got %d argument(s)", what, len(args))
		}
		return nil
	}
}

// StateDir is where fnctl keeps its state: $FN_STATE, else
// $XDG_STATE_HOME/microfn, else ~/.local/state/microfn.
func StateDir() string {
	if d := os.Getenv("FN_STATE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "microfn")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "microfn")
	}
	return filepath.Join(os.TempDir(), "microfn")
}

// parseHeaders reads repeated --header key=value flags.
func parseHeaders(flags []string) (map[string]string, error) {
	h := make(map[string]string, len(flags))
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, usagef("malformed --header %q: want key=value", f)
		}
		h[k] = v
	}
	return h, nil
}

// noTopicError reports that a topic to read does not exist.
type noTopicError struct{ topic string }

func (e noTopicError) Error() string { return fmt.Sprintf("topic %q does not exist", e.topic) }

// topicClient connects to the brokers named by flag (or FN_BROKERS) to read
// an existing topic, and returns the topic's partitions. It never creates
// the topic: reading one that is not there is a noTopicError.
func topicClient(brokersFlag, topic string) (sarama.Client, []int32, error) {
	brokers, err := kafka.Brokers(brokersFlag)
	if err != nil {
		return nil, nil, usageError{err}
	}
	cfg := kafka.Config("fnctl")
	cfg.Metadata.AllowAutoTopicCreation = false
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach Kafka at %v: %w", brokers, err)
	}
	parts, err := client.Partitions(topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		err = noTopicError{topic}
	} else if err != nil {
		err = fmt.Errorf("topic %q: %w", topic, err)
	}
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return client, parts, nil
}
