package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// ScaleOptions are the flags of `fnctl scale`.
type ScaleOptions struct {
	IO IO
	ServerOptions
	Name string
	poolFlags
}

func newCmdScale(streams IO, run func(context.Context, ScaleOptions) error) *cobra.Command {
	if run == nil {
		run = runScale
	}
	opts := ScaleOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "scale NAME --pool N | --min-pool N --max-pool M",
		Short: "Resize a deployment's pool of warm processes",
		Long: `Set how many warm processes the deployment NAME keeps, which is also
how many of its messages can run at once: --pool N fixes it, --min-pool
and --max-pool let it follow the work between them (see fnctl deploy).
The pool moves into the new bounds at once. They are saved and survive a
restart of the daemon.`,
		Example: `  fnctl scale greeter --pool 8
  fnctl scale greeter --min-pool 0 --max-pool 16`,
		Args: rangeArgs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if err := checkName(opts.Name); err != nil {
				return err
			}
			if f := cmd.Flags(); !f.Changed("pool") && !f.Changed("max-pool") && !f.Changed("min-pool") {
				return usagef("want --pool N, or --min-pool N --max-pool M")
			}
			if cmd.Flags().Changed("scale-down-after") {
				return usagef("--scale-down-after is set by fnctl deploy")
			}
			if err := opts.poolFlags.check(cmd); err != nil {
				return err
			}
			return run(cmd.Context(), opts)
		},
	}
	addServerFlags(cmd, &opts.ServerOptions)
	addPoolFlags(cmd, &opts.poolFlags, 0)
	return cmd
}

func runScale(ctx context.Context, opts ScaleOptions) error {
	client, err := opts.client()
	if err != nil {
		return err
	}
	st, err := client.Scale(ctx, opts.Name, opts.MinPool, opts.MaxPool)
	if err != nil {
		return fromDaemon(err)
	}
	fmt.Fprintf(opts.IO.Err, "scaled %s\n", statusLine(st))
	return nil
}
