package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/microfn/microfn/internal/daemon"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/kconn"
)

// UpOptions are the flags of `fnctl up`.
type UpOptions struct {
	IO           IO
	StateDir     string
	Brokers      string
	Kafka        kconn.Settings
	BrokerListen string
	BrokerSync   bool
	Listen       string
	Token        string
}

func newCmdUp(streams IO, run func(context.Context, UpOptions) error) *cobra.Command {
	if run == nil {
		run = runUp
	}
	opts := UpOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the restarter daemon",
		Long: `Run the restarter daemon until interrupted: it keeps a pool of warm
function processes for every deployment and serves the API that the
deploy, ls, rm, scale, logs and status commands use.

Without --brokers (or FN_BROKERS) it runs the embedded Kafka-protocol
broker on --broker-listen; with either, it runs none and uses that Kafka
(so FN_BROKERS exported for the other commands also turns it off). What
the embedded broker acknowledged survives a crash of the daemon (kill -9);
with --sync it also survives a power loss, at the cost of an fsync per
produced batch and per commit. Everything it keeps is in --state (default
$FN_STATE, else $XDG_STATE_HOME/microfn, else ~/.local/state/microfn):
the embedded broker's data, the deployments, their binaries and their
logs. Deployments survive a restart of the daemon.

The API listens on 127.0.0.1:7077; listening on any other address
requires --token (or FN_TOKEN), which every request must then present.
On interrupt it lets in-flight messages finish and commits them.`,
		Example: `  fnctl up
  fnctl up --brokers kafka1:9092,kafka2:9092
  FN_TOKEN=s3cret fnctl up --listen 0.0.0.0:7077`,
		Args: rangeArgs(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.StateDir == "" {
				opts.StateDir = StateDir()
			}
			return run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.StateDir, "state", "", "state directory (default $FN_STATE or ~/.local/state/microfn)")
	cmd.Flags().StringVar(&opts.Brokers, "brokers", "", "Kafka brokers host:port,... (default $FN_BROKERS, else the embedded broker)")
	addKafkaFlags(cmd.Flags(), &opts.Kafka)
	cmd.Flags().StringVar(&opts.BrokerListen, "broker-listen", daemon.DefaultBrokerListen, "address of the embedded broker")
	cmd.Flags().BoolVar(&opts.BrokerSync, "sync", false, "embedded broker: fsync every produced batch and commit (survives power loss; slower)")
	cmd.Flags().StringVar(&opts.Listen, "listen", daemon.DefaultListen, "address of the API")
	cmd.Flags().StringVar(&opts.Token, "token", "", "API token that every request must present (default $"+daemon.EnvToken+")")
	return cmd
}

func runUp(ctx context.Context, opts UpOptions) error {
	// Where the broker list came from, for the messages: either one means
	// no embedded broker, which is easy to miss with FN_BROKERS exported
	// for the other commands.
	from := ""
	switch {
	case opts.Brokers != "":
		from = "--brokers"
	case os.Getenv(kafka.EnvBrokers) != "":
		from = kafka.EnvBrokers
	}
	settings, err := kafkaSettings(opts.Kafka)
	if err != nil {
		return err
	}
	conn, err := kafkaConn(opts.Kafka, opts.IO.Err)
	if err != nil {
		return err
	}
	brokers := cmp.Or(opts.Brokers, os.Getenv(kafka.EnvBrokers))
	cfg := daemon.Config{
		StateDir: opts.StateDir,
		Brokers:  brokers,
		Kafka:    conn,
		FunctionKafkaEnv: append([]string{kafka.EnvBrokers + "=" + cmp.Or(brokers, opts.BrokerListen)},
			settings.Env(os.Getenv)...),
		BrokerListen: opts.BrokerListen,
		BrokerSync:   opts.BrokerSync,
		Listen:       opts.Listen,
		Token:        cmp.Or(opts.Token, os.Getenv(daemon.EnvToken)),
		Logger:       slog.New(slog.NewTextHandler(opts.IO.Err, nil)),
		OnReady:      func(r daemon.Ready) { fmt.Fprintln(opts.IO.Err, readyLine(r, from)) },
	}
	err = daemon.Run(ctx, cfg)
	var ce *daemon.ConfigError
	switch {
	case errors.As(err, &ce):
		return usageError{err}
	case err != nil && from != "" && errors.Is(err, kafka.ErrUnreachable):
		return fmt.Errorf("%w (no embedded broker: %s)", err, noEmbedded(from))
	}
	return err
}

// noEmbedded says why the daemon runs no embedded broker.
func noEmbedded(from string) string {
	if from == kafka.EnvBrokers {
		return kafka.EnvBrokers + " is set; unset it to run one"
	}
	return from + " was given"
}

// readyLine is the one line `fnctl up` prints once it serves; from is
// where an external broker list came from.
func readyLine(r daemon.Ready, from string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "fnctl daemon: API on %s, ", r.API)
	if r.Broker.Kind == "embedded" {
		fmt.Fprintf(&sb, "embedded broker on %s", strings.Join(r.Broker.Addrs, ","))
	} else {
		fmt.Fprintf(&sb, "Kafka at %s", strings.Join(r.Broker.Addrs, ","))
		if s := r.Broker.Security; s != "" && s != "plaintext" {
			fmt.Fprintf(&sb, " over %s", s)
		}
		if from != "" {
			fmt.Fprintf(&sb, " (from %s)", from)
		}
	}
	if !r.Broker.Reachable {
		sb.WriteString(" (unreachable)")
	}
	fmt.Fprintf(&sb, ", state in %s, %d deployment(s) restored", r.StateDir, r.Restored)
	if len(r.Failed) > 0 {
		fmt.Fprintf(&sb, ", %d failed (%s): see fnctl ls", len(r.Failed), strings.Join(r.Failed, ", "))
	}
	return sb.String()
}
