package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/microfn/microfn/internal/bench"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/kconn"
	"github.com/microfn/microfn/restarter"
)

// trivialPkg is the function `fnctl bench` measures by default, and
// helloPkg the hello-world program its start cost is compared with.
const (
	trivialPkg = "github.com/microfn/microfn/internal/bench/trivialfn"
	helloPkg   = "github.com/microfn/microfn/internal/bench/hello"
)

// BenchOptions are the flags of `fnctl bench`.
type BenchOptions struct {
	IO         IO
	Path       string
	Brokers    string
	Kafka      kconn.Settings
	Messages   int
	Payload    int
	Pool       int
	Partitions int
	Order      string
	Rounds     int
	Output     string
	// Scale runs the many-deployments scenario instead (minutes).
	Scale bool
	Idle  int
}

func newCmdBench(streams IO, run func(context.Context, BenchOptions) error) *cobra.Command {
	if run == nil {
		run = runBench
	}
	opts := BenchOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "bench [PATH]",
		Short: "Measure microfn against this machine's limits",
		Long: `Measure microfn on this machine, each figure next to a baseline taken in
the same run (absolute numbers drift on a shared machine; ratios hold):

  spawn       start, feed one message to and reap the function binary, no
              broker: the limit of one process per message
  start       the function's start cost against a hello-world program's,
              both spawned as the restarter spawns, and the hello-world
              spawn rate that the restarter's throughput is compared with
  restarter   messages/s published to committed through 'fnctl up' (run as
              a separate process) with a warm pool, and its ratio to spawn
  latency     publish to handler start and to commit, p50 and p99, at half
              the measured capacity
  standalone  the same function run standalone, restarted once per message
  embedded    fn.Serve against a raw watermill-kafka subscriber
  disk        the embedded broker with a data directory: produce and commit,
              each acknowledged before the next, without and with --sync
  cost        the daemon's CPU per message (its children excluded), the
              memory of a warm process and of the daemon with 10
              deployments of pool 8

--scale measures many deployments on one 'fnctl up' with its embedded
broker instead (several minutes):

  idle        --idle deployments (500) with pools from 0, nothing
              published: the daemon's CPU and memory per deployment,
              against the daemon alone
  burst       200 deployments, one message each to 20 idle ones (the
              cold start) and a burst of 4×250 messages: the time to
              drain it, how far the pools grew and how soon they shrank
              back, and the idle daemon and function processes, with
              pools from 0 to 8 against fixed pools of 1

PATH is a Go package with a function (default: a built-in one that
acknowledges and does nothing), built with a plain go build. Each figure is the median of
--rounds rounds, with the minimum and maximum. It runs on the embedded
broker unless --brokers is given.`,
		Example: `  fnctl bench
  fnctl bench --scale
  fnctl bench -o json
  fnctl bench ./examples/greeter --pool 4 --order partition`,
		Args: rangeArgs(0, 1, "an optional PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = trivialPkg
			if len(args) == 1 {
				opts.Path = args[0]
			}
			switch {
			case opts.Output != "text" && opts.Output != "json":
				return usagef("-o must be text or json, got %q", opts.Output)
			case opts.Messages < 10:
				return usagef("--messages must be at least 10, got %d", opts.Messages)
			case opts.Pool < 1:
				return usagef("--pool must be at least 1, got %d", opts.Pool)
			case opts.Partitions < 1:
				return usagef("--partitions must be at least 1, got %d", opts.Partitions)
			case opts.Rounds < 1:
				return usagef("--rounds must be at least 1, got %d", opts.Rounds)
			case opts.Payload < 0:
				return usagef("--payload must not be negative, got %d", opts.Payload)
			case opts.Idle < 1:
				return usagef("--idle must be at least 1, got %d", opts.Idle)
			}
			switch restarter.Order(opts.Order) {
			case restarter.OrderKey, restarter.OrderPartition, restarter.OrderNone:
			default:
				return usagef("--order must be key, partition or none, got %q", opts.Order)
			}
			return run(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Brokers, "brokers", "", "Kafka brokers host:port,... (default: the embedded broker, started for the run)")
	addKafkaFlags(f, &opts.Kafka)
	f.IntVar(&opts.Messages, "messages", 600, "messages per throughput round")
	f.IntVar(&opts.Payload, "payload", 100, "payload size in bytes")
	f.IntVar(&opts.Pool, "pool", 8, "warm processes")
	f.IntVar(&opts.Partitions, "partitions", 4, "partitions of the topics")
	f.StringVar(&opts.Order, "order", "key", "ordering: key, partition or none")
	f.IntVar(&opts.Rounds, "rounds", 3, "rounds per figure")
	f.StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	f.BoolVar(&opts.Scale, "scale", false, "measure many idle deployments and a burst to a few (minutes)")
	f.IntVar(&opts.Idle, "idle", 500, "with --scale: idle deployments")
	return cmd
}

func runBench(ctx context.Context, opts BenchOptions) error {
	cfg := bench.Config{Messages: opts.Messages, Payload: opts.Payload, Pool: opts.Pool,
		Partitions: opts.Partitions, Order: restarter.Order(opts.Order), Rounds: opts.Rounds, Progress: opts.IO.Err}
	if opts.Brokers != "" {
		b, err := kafka.ParseBrokers(opts.Brokers)
		if err != nil {
			return usageError{err}
		}
		cfg.Brokers = b
	}
	settings, err := kafkaSettings(opts.Kafka)
	if err != nil {
		return err
	}
	if cfg.Kafka, err = kafkaConn(opts.Kafka, opts.IO.Err); err != nil {
		return err
	}
	if cfg.Kafka != nil {
		if opts.Brokers == "" {
			return usagef("TLS or SASL settings need --brokers: the embedded broker is plaintext")
		}
		cfg.KafkaEnv = settings.Env(os.Getenv)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Fnctl = self
	goTool, err := exec.LookPath("go")
	if err != nil {
		return errors.New("fnctl bench builds the function: it needs the go command in PATH")
	}
	tmp, err := os.MkdirTemp("", "fnctl-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dir, pkg := "", opts.Path
	if fi, err := os.Stat(opts.Path); err == nil && fi.IsDir() {
		dir, pkg = opts.Path, "."
	}
	fmt.Fprintf(opts.IO.Err, "bench: building %s\n", opts.Path)
	cfg.Function = filepath.Join(tmp, "function")
	if err := goBuild(ctx, goTool, dir, pkg, cfg.Function); err != nil {
		return fmt.Errorf("go build %s: %w", opts.Path, err)
	}
	var rep *bench.Report
	if opts.Scale {
		rep, err = bench.RunScale(ctx, bench.ScaleConfig{Function: cfg.Function, Fnctl: self, Idle: opts.Idle, Progress: opts.IO.Err})
	} else {
		cfg.Standalone = cfg.Function
		if settings.TLS || settings.SCRAM() {
			// A standalone run needs fn/secure for them, which the function
			// measured may not import.
			cfg.Standalone = ""
			fmt.Fprintf(opts.IO.Err, "bench: no standalone figure: over TLS or SCRAM a standalone run needs the function to import fn/secure\n")
		}
		cfg.Hello = filepath.Join(tmp, "hello")
		if err := goBuild(ctx, goTool, "", helloPkg, cfg.Hello); err != nil {
			return fmt.Errorf("go build %s: %w", helloPkg, err)
		}
		rep, err = bench.Run(ctx, cfg)
	}
	if err != nil {
		return err
	}
	if opts.Output == "json" {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	w := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "FIGURE\tMEDIAN\tMIN\tMAX\tUNIT\tGOAL\n")
	for _, f := range rep.Figures {
		goal := f.Goal
		if f.Met != nil {
			goal += map[bool]string{true: " (met)", false: " (not met)"}[*f.Met]
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, num(f.Median), num(f.Min), num(f.Max), f.Unit, goal)
	}
	if opts.Scale {
		fmt.Fprintf(w, "\n%d CPUs, %s, %s broker, one run\n", rep.CPUs, rep.Go, rep.Config.Broker)
	} else {
		fmt.Fprintf(w, "\n%d CPUs, %s, %s broker, %d messages of %d bytes, pool %d, %d partitions, order %s, %d rounds\n",
			rep.CPUs, rep.Go, rep.Config.Broker, rep.Config.Messages, rep.Config.Payload, rep.Config.Pool,
			rep.Config.Partitions, rep.Config.Order, rep.Config.Rounds)
	}
	return w.Flush()
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
