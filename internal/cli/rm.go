package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// RmOptions are the flags of `fnctl rm`.
type RmOptions struct {
	IO IO
	ServerOptions
	Name string
}

func newCmdRm(streams IO, run func(context.Context, RmOptions) error) *cobra.Command {
	if run == nil {
		run = runRm
	}
	opts := RmOptions{IO: streams}
	cmd := &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"remove"},
		Short:   "Remove a deployment",
		Long: `Remove the deployment NAME: it stops fetching, lets its in-flight
messages finish, commits and leaves its consumer group; then the daemon
deletes its spec, binary and log.`,
		Example: `  fnctl rm greeter`,
		Args:    rangeArgs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if err := checkName(opts.Name); err != nil {
				return err
			}
			return run(cmd.Context(), opts)
		},
	}
	addServerFlags(cmd, &opts.ServerOptions)
	return cmd
}

func runRm(ctx context.Context, opts RmOptions) error {
	client, err := opts.client()
	if err != nil {
		return err
	}
	if err := client.Remove(ctx, opts.Name); err != nil {
		return fromDaemon(err)
	}
	fmt.Fprintf(opts.IO.Err, "removed %s\n", opts.Name)
	return nil
}
