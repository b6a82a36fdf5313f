package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/microfn/microfn/internal/daemon"
	"github.com/microfn/microfn/restarter"
)

// LogsOptions are the flags of `fnctl logs`.
type LogsOptions struct {
	IO IO
	ServerOptions
	// StateDir is where the log file is read from, unless a daemon is
	// named (Server or FN_SERVER): then it is read through the daemon.
	StateDir string
	Name     string
	Follow   bool
	Lines    int
}

func newCmdLogs(streams IO, run func(context.Context, LogsOptions) error) *cobra.Command {
	if run == nil {
		run = runLogs
	}
	opts := LogsOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a deployment's function output",
		Long: `Print the last -n lines of what the processes of the deployment NAME
wrote to stdout and stderr, each line marked with its invocation and
stream; with -f, keep printing new lines until interrupted or the
deployment is removed.

The log is a file in the state directory of 'fnctl up' (--state, else
$FN_STATE, else $XDG_STATE_HOME/microfn or ~/.local/state/microfn), and
logs reads it there: no daemon needs to be running. With --server (or
FN_SERVER) it reads it through that daemon instead, from anywhere.`,
		Example: `  fnctl logs greeter
  fnctl logs greeter -f -n 0
  fnctl logs greeter --state /var/lib/microfn
  fnctl logs greeter --server 10.0.0.5:7077 --token s3cret`,
		Args: rangeArgs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if err := checkName(opts.Name); err != nil {
				return err
			}
			if opts.Lines < 0 {
				return usagef("-n must not be negative, got %d", opts.Lines)
			}
			if opts.StateDir != "" && opts.Server != "" {
				return usagef("--state and --server exclude each other: the log is read from the one or through the other")
			}
			if opts.StateDir == "" && opts.Server == "" && os.Getenv(daemon.EnvServer) == "" {
				opts.StateDir = StateDir()
			}
			return run(cmd.Context(), opts)
		},
	}
	addServerFlags(cmd, &opts.ServerOptions)
	cmd.Flags().StringVar(&opts.StateDir, "state", "", "state directory to read the log from (default $FN_STATE or ~/.local/state/microfn)")
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVarP(&opts.Lines, "lines", "n", daemon.DefaultLogTail, "print this many of the last lines first")
	return cmd
}

func runLogs(ctx context.Context, opts LogsOptions) error {
	var err error
	if opts.StateDir != "" {
		err = daemon.Logs(ctx, opts.StateDir, opts.Name, opts.Lines, opts.Follow, opts.IO.Out)
		if errors.Is(err, restarter.ErrNotFound) {
			err = notFoundError{err}
		}
	} else {
		client, cerr := opts.client()
		if cerr != nil {
			return cerr
		}
		err = fromDaemon(client.Logs(ctx, opts.Name, opts.Follow, opts.Lines, opts.IO.Out))
		if errors.Is(err, daemon.ErrNoDaemon) {
			err = fmt.Errorf("%w; with no daemon, read the log file with --state DIR", err)
		}
	}
	if ctx.Err() != nil { // interrupted: the way -f ends
		return nil
	}
	return err
}
