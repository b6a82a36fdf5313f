package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// StatusOptions are the flags of `fnctl status`.
type StatusOptions struct {
	IO IO
	ServerOptions
	Output string
}

func newCmdStatus(streams IO, run func(context.Context, StatusOptions) error) *cobra.Command {
	if run == nil {
		run = runStatus
	}
	opts := StatusOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the daemon's, the broker's and the deployments' health",
		Long: `Show the daemon (pid, version, uptime, state directory), the broker it
uses and whether it is reachable, and how many deployments are in each
state, with the reason of every deployment that is not running.`,
		Example: `  fnctl status
  FN_SERVER=10.0.0.5:7077 FN_TOKEN=s3cret fnctl status -o json`,
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

func runStatus(ctx context.Context, opts StatusOptions) error {
	client, err := opts.client()
	if err != nil {
		return err
	}
	o, err := client.Status(ctx)
	if err != nil {
		return fromDaemon(err)
	}
	if opts.Output == "json" {
		return printJSON(opts.IO, o)
	}
	reach := "reachable"
	if !o.Broker.Reachable {
		reach = "UNREACHABLE"
	}
	states := map[string]int{}
	for _, s := range o.Deployments {
		states[s.State]++
	}
	var counts []string
	for _, st := range slices.Sorted(maps.Keys(states)) {
		counts = append(counts, fmt.Sprintf("%d %s", states[st], st))
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "daemon:\tpid %d, version %s, up %v\n", o.Daemon.PID, o.Daemon.Version, time.Duration(o.Daemon.Uptime))
	fmt.Fprintf(tw, "state:\t%s\n", o.Daemon.StateDir)
	security := ""
	if o.Broker.Security != "" && o.Broker.Security != "plaintext" {
		security = ", " + o.Broker.Security
	}
	fmt.Fprintf(tw, "broker:\t%s %s%s, %s\n", o.Broker.Kind, strings.Join(o.Broker.Addrs, ","), security, reach)
	if len(counts) == 0 {
		fmt.Fprintf(tw, "deployments:\tnone\n")
	} else {
		fmt.Fprintf(tw, "deployments:\t%d (%s)\n", len(o.Deployments), strings.Join(counts, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range o.Deployments {
		if s.Reason != "" {
			fmt.Fprintf(opts.IO.Out, "  %s: %s: %s\n", s.Name, s.State, s.Reason)
		}
	}
	return nil
}
