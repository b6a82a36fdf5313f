package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// LsOptions are the flags of `fnctl ls`.
type LsOptions struct {
	IO IO
	ServerOptions
	Output string
}

func newCmdLs(streams IO, run func(context.Context, LsOptions) error) *cobra.Command {
	if run == nil {
		run = runLs
	}
	opts := LsOptions{IO: streams}
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the deployments",
		Long: `List the daemon's deployments: pool size, warm processes, messages in
flight, processed, failed attempts, dead-lettered (DLQ), processes that
died before taking a message (RESTARTS), lag and status, then why each
paused, degraded or failed deployment is so. A deployment is degraded when
a partition's log no longer held its group's committed position: records
it had not processed are gone (lost by the broker, removed by retention,
or the topic was re-created); it goes on from the oldest record and stays
degraded until it is deployed again. -o json prints them with their specs,
reasons and holes.`,
		Example: `  fnctl ls
  fnctl ls -o json`,
		Args: rangeArgs(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			return run(cmd.Context(), opts)
		},
	}
	addServerFlags(cmd, &opts.ServerOptions)
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runLs(ctx context.Context, opts LsOptions) error {
	client, err := opts.client()
	if err != nil {
		return err
	}
	sts, err := client.List(ctx)
	if err != nil {
		return fromDaemon(err)
	}
	if opts.Output == "json" {
		return printJSON(opts.IO, sts)
	}
	if len(sts) == 0 {
		fmt.Fprintln(opts.IO.Err, "no deployments (deploy one with `fnctl deploy PATH`)")
		return nil
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTOPIC\tPOOL\tWARM\tINFLIGHT\tPROCESSED\tFAILED\tDLQ\tRESTARTS\tLAG\tSTATUS")
	for _, s := range sts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n",
			s.Name, s.Topic, poolNow(s), s.Warm, s.InFlight, s.Processed, s.Failed, s.DeadLettered, s.Restarts, s.Lag, s.State)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range sts {
		if s.Reason != "" {
			fmt.Fprintf(opts.IO.Out, "  %s: %s: %s\n", s.Name, s.State, s.Reason)
		}
	}
	for _, s := range sts {
		if b := s.Spec.WithDefaults(); b.MinPool != b.MaxPool && s.Scaled != "" {
			fmt.Fprintf(opts.IO.Out, "  %s: pool %s (%s ago)\n", s.Name, s.Scaled, time.Since(s.ScaledAt).Round(time.Second))
		}
	}
	return nil
}
