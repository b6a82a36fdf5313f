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
	Pool int
}

func newCmdScale(streams IO, run func(context.Context, ScaleOptions) error) *cobra.Command {
	if run == nil {
		run = runScale
	}
	opts := ScaleOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "scale NAME --pool N",
		Short: "Resize a deployment's pool of warm processes",
		Long: `Set how many warm processes the deployment NAME keeps, which is also
how many of its messages can run at once. The new size is saved and
survives a restart of the daemon.`,
		Example: `  fnctl scale greeter --pool 8`,
		Args:    rangeArgs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if err := checkName(opts.Name); err != nil {
				return err
			}
			if !cmd.Flags().Changed("pool") {
				return usagef("want --pool N")
			}
			if opts.Pool < 1 {
				return usagef("--pool must be at least 1, got %d", opts.Pool)
			}
			return run(cmd.Context(), opts)
		},
	}
	addServerFlags(cmd, &opts.ServerOptions)
	cmd.Flags().IntVar(&opts.Pool, "pool", 0, "warm processes to keep (at least 1)")
	return cmd
}

func runScale(ctx context.Context, opts ScaleOptions) error {
	client, err := opts.client()
	if err != nil {
		return err
	}
	st, err := client.Scale(ctx, opts.Name, opts.Pool)
	if err != nil {
		return fromDaemon(err)
	}
	fmt.Fprintf(opts.IO.Err, "scaled %s\n", statusLine(st))
	return nil
}
