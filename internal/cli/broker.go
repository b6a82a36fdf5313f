package cli

import (
	"context"
	"fmt"
	"net"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/microfn/microfn/broker"
)

// BrokerOptions are the flags of `fnctl broker`.
type BrokerOptions struct {
	IO         IO
	Listen     string
	DataDir    string
	Memory     bool
	Partitions int
	Sync       bool
	Recover    bool
}

func newCmdBroker(streams IO, run func(context.Context, BrokerOptions) error) *cobra.Command {
	if run == nil {
		run = runBroker
	}
	opts := BrokerOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Kafka-protocol broker alone",
		Long: `Run the embedded Kafka-protocol broker (franz-go's kfake) until interrupted.

Any Kafka client can use it. Topics are created on first use with
--partitions partitions. Topics, records and committed offsets are kept in
--data (default: the broker/ folder of the state directory, $FN_STATE or
~/.local/state/microfn). Everything it acknowledged survives a restart and a
crash of its process (kill -9); with --sync it also survives a power loss,
at the cost of an fsync per produced batch and per commit.

It refuses to start when --data holds records of a topic it has no record
of, as an earlier version could leave after a crash; --recover creates
such topics again so that their records are served.`,
		Example: `  fnctl broker &
  fnctl broker --listen 127.0.0.1:19092 --memory --partitions 1
  fnctl broker --data /var/lib/microfn/broker --sync`,
		Args: rangeArgs(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Partitions < 1 {
				return usagef("--partitions must be at least 1, got %d", opts.Partitions)
			}
			if _, _, err := net.SplitHostPort(opts.Listen); err != nil {
				return usagef("--listen %q: want host:port", opts.Listen)
			}
			if opts.DataDir == "" && !opts.Memory {
				opts.DataDir = filepath.Join(StateDir(), "broker")
			}
			return run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Listen, "listen", "127.0.0.1:9092", "address to listen on")
	cmd.Flags().StringVar(&opts.DataDir, "data", "", "data directory (default $FN_STATE/broker)")
	cmd.Flags().BoolVar(&opts.Memory, "memory", false, "keep nothing on disk")
	cmd.Flags().IntVar(&opts.Partitions, "partitions", broker.DefaultPartitions, "partitions of topics created on first use")
	cmd.Flags().BoolVar(&opts.Sync, "sync", false, "fsync every produced batch and commit (survives power loss; slower)")
	cmd.Flags().BoolVar(&opts.Recover, "recover", false, "serve records found in --data for topics the broker has no record of")
	return cmd
}

func runBroker(ctx context.Context, opts BrokerOptions) error {
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: opts.Listen, DataDir: opts.DataDir,
		Partitions: opts.Partitions, SyncWrites: opts.Sync, Recover: opts.Recover})
	if err != nil {
		return err
	}
	where := "in memory"
	if opts.DataDir != "" {
		where = "data in " + opts.DataDir
		if opts.Sync {
			where += ", fsync per write"
		}
	}
	fmt.Fprintf(opts.IO.Err, "embedded Kafka-protocol broker listening on %s (%s)\n", e.Addr(), where)
	<-ctx.Done()
	fmt.Fprintln(opts.IO.Err, "stopping the embedded broker")
	return e.Close()
}
