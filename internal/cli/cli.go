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
	"github.com/microfn/microfn/internal/kconn"
	"github.com/microfn/microfn/restarter"
)

// Exit codes of fnctl, the same for every command; the root command's
// help lists them.
const (
	ExitOK = 0
	// ExitFailure: the command could not do its job (Kafka or the daemon
	// unreachable, a function that did not acknowledge, ...).
	ExitFailure = 1
	// ExitUsage: the command was refused as given: bad flags or
	// arguments, an invalid name, topic or group, a deploy that conflicts
	// with another deployment.
	ExitUsage = 2
	// ExitNotFound: the deployment or topic named does not exist.
	ExitNotFound = 3
)

// exitCodesHelp is the table of exit codes in fnctl --help and the README.
const exitCodesHelp = `Exit codes, the same for every command:
  0  success, also when a command that follows (tail, logs -f, up, broker) is interrupted
  1  failure: Kafka or the daemon unreachable, a function that did not acknowledge, ...
  2  refused as given: bad flags or arguments, an invalid name, topic or group,
     a deploy whose consumer group is another deployment's
  3  not found: no such deployment or topic`

// IO is the streams a command reads and writes.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// usageError marks input fnctl refuses as given: exit code ExitUsage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// notFoundError marks a deployment or topic that does not exist: exit
// code ExitNotFound.
type notFoundError struct{ err error }

func (e notFoundError) Error() string { return e.err.Error() }
func (e notFoundError) Unwrap() error { return e.err }

// exitCode is the exit code of a command that returned err.
func exitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, new(usageError)), strings.HasPrefix(err.Error(), "unknown command"):
		return ExitUsage
	case errors.As(err, new(notFoundError)):
		return ExitNotFound
	}
	return ExitFailure
}

// Main runs fnctl with args and returns its exit code. Errors are one
// line on stderr.
func Main(args []string, in io.Reader, out, errw io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	streams := IO{In: in, Out: out, Err: errw}
	root := newRootCmd(streams)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintf(errw, "fnctl: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return exitCode(err)
}

func newRootCmd(streams IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "fnctl",
		Short: "Run, feed and inspect microfn functions on Kafka",
		Long: `fnctl runs, feeds and inspects microfn functions on Kafka.

Environment:
  FN_BROKERS  Kafka of publish, tail, replay and up, host:port,... (or --brokers);
              default 127.0.0.1:9092, the embedded broker of 'fnctl up' and
              'fnctl broker'. Set, it makes 'fnctl up' run no embedded broker.
  FN_SERVER   the daemon of 'fnctl up' for deploy, ls, rm, scale, replay, status
              and logs (or --server); default 127.0.0.1:7077
  FN_TOKEN    the daemon's API token (or --token)
  FN_STATE    the state directory of up and logs (or --state); default
              $XDG_STATE_HOME/microfn, else ~/.local/state/microfn
  FN_TLS, FN_TLS_CA, FN_TLS_CERT, FN_TLS_KEY, FN_TLS_SERVER_NAME,
  FN_TLS_INSECURE_SKIP_VERIFY, FN_SASL_MECHANISM, FN_SASL_USER,
  FN_SASL_PASSWORD_FILE, FN_SASL_PASSWORD
              how publish, tail, replay, bench, deploy and up connect to a
              secured Kafka (or --tls, --tls-ca, ..., --sasl-password-file;
              the password itself only from a file or FN_SASL_PASSWORD)

` + exitCodesHelp + `

Shell completion: see 'fnctl completion --help'.`,
		Example: `  fnctl up &
  fnctl deploy ./examples/greeter --pool 4
  fnctl publish names '{"name":"ada"}'
  fnctl tail greetings --from-beginning -n 1`,
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
	root.SetHelpCommand(newCmdHelp())
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Example = `  source <(fnctl completion bash)     # this bash session
  fnctl completion bash > /etc/bash_completion.d/fnctl
  fnctl completion zsh > "${fpath[1]}/_fnctl"
  fnctl completion fish > ~/.config/fish/completions/fnctl.fish`
			for _, sh := range c.Commands() {
				sh.Example = map[string]string{
					"bash":       "  source <(fnctl completion bash)",
					"zsh":        `  fnctl completion zsh > "${fpath[1]}/_fnctl"`,
					"fish":       "  fnctl completion fish > ~/.config/fish/completions/fnctl.fish",
					"powershell": "  fnctl completion powershell | Out-String | Invoke-Expression",
				}[sh.Name()]
			}
			// Runnable, so that an unknown shell is an error rather than
			// the help and exit code 0.
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
	}
	refuseBadArgsAsUsage(root)
	return root
}

// newCmdHelp replaces cobra's help command, which answers an unknown
// topic with the usage and exit code 0.
func newCmdHelp() *cobra.Command {
	return &cobra.Command{
		Use:     "help [COMMAND]",
		Short:   "Help about any command",
		Example: "  fnctl help deploy",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, rest, err := cmd.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usagef("no help for %q: not a command (see fnctl --help)", strings.Join(args, " "))
			}
			return c.Help()
		},
	}
}

// refuseBadArgsAsUsage makes every command's argument check, its own or
// cobra's, a usage error.
func refuseBadArgsAsUsage(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			err := check(cmd, args)
			if err != nil && !errors.As(err, new(usageError)) {
				err = usageError{err}
			}
			return err
		}
	}
	for _, sub := range c.Commands() {
		refuseBadArgsAsUsage(sub)
	}
}

// rangeArgs is cobra.RangeArgs that says which arguments it wants.
func rangeArgs(lo, hi int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usagef("want %s, got %d argument(s)", what, len(args))
		}
		return nil
	}
}

// checkTopic refuses a topic name Kafka would refuse, as a usage error.
func checkTopic(topic string) error {
	if err := kafka.ValidateTopic(topic); err != nil {
		return usageError{err}
	}
	return nil
}

// checkName refuses a name no deployment can have, as a usage error.
func checkName(name string) error {
	if err := restarter.ValidateName(name); err != nil {
		return usageError{err}
	}
	return nil
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

// topicClient connects to the brokers named by flag (or FN_BROKERS), with
// the connection settings, to read
// an existing topic, and returns the topic's partitions. It never creates
// the topic: reading one that is not there is a notFoundError.
func topicClient(brokersFlag string, settings kconn.Settings, errw io.Writer, topic string) (sarama.Client, []int32, error) {
	brokers, err := kafka.Brokers(brokersFlag)
	if err != nil {
		return nil, nil, usageError{err}
	}
	conn, err := kafkaConn(settings, errw)
	if err != nil {
		return nil, nil, err
	}
	cfg := conn.Config("fnctl")
	cfg.Metadata.AllowAutoTopicCreation = false
	client, err := conn.NewClient(brokers, cfg)
	if err != nil {
		return nil, nil, err
	}
	parts, err := client.Partitions(topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		err = notFoundError{fmt.Errorf("topic %q does not exist", topic)}
	} else if err != nil {
		err = fmt.Errorf("topic %q: %w", topic, err)
	}
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return client, parts, nil
}
