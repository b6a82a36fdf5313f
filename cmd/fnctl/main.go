// Command fnctl runs, feeds and inspects microfn functions.
package main

import (
	"os"

	"github.com/rcrowley/go-metrics"

	"github.com/microfn/microfn/internal/cli"
)

func main() {
	// sarama's clients record into the registry microfn gives them, which
	// keeps nothing (see internal/kafka), except one meter per fetched
	// topic that its FetchRequest encoder registers in go-metrics'
	// DefaultRegistry (sarama v1.61.1, fetch_request.go: the size-counting
	// encoding pass has no registry). Each such meter is ticked every five
	// seconds by go-metrics for the life of the process, so a daemon with
	// many deployments pays for every topic it ever read. fnctl is a
	// program of its own: it may turn go-metrics off process-wide, which a
	// library (fn, restarter, broker) must not do to the program that
	// embeds it.
	metrics.UseNilMetrics = true
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
