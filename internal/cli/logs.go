package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/microfn/microfn/internal/daemon"
)

// LogsOptions are the flags of `fnctl logs`.
type LogsOptions struct {
	IO IO
	ServerOptions
	Name   string
	Follow bool
	Lines  int
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
wrote to stdout and stderr, each line marked with its invocation; with
-f, keep printing new lines until interrupted.`,
		Example: `  fnctl logs greeter
  fnctl logs greeter -f -n 0`,
		Args: rangeArgs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if opts.Lines < 0 {
				return usagef("-n must not be negative, got %d", opts.Lines)
			}
			return run(cmd.Context(), opts)
		},
	}
	addServerFlags(cmd, &opts.ServerOptions)
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVarP(&opts.Lines, "lines", "n", daemon.DefaultLogTail, "print this many of the last lines first")
	return cmd
}

func runLogs(ctx context.Context, opts LogsOptions) error {
	client, err := opts.client()
	if err != nil {
		return err
	}
	err = client.Logs(ctx, opts.Name, opts.Follow, opts.Lines, opts.IO.Out)
	if ctx.Err() != nil { // interrupted: the way -f ends
		return nil
	}
	return fromDaemon(err)
}
