// Command take is kwire's one-shot path as a process: it joins a consumer
// group, takes one record, optionally copies it to another topic, commits
// and leaves. The tests run it as a real process, and the start-cost
// benchmark spawns it without arguments (it then only prints its usage)
// against a hello-world, so that what is measured is the cost of linking
// and initialising kwire.
//
//	take BROKERS GROUP TOPIC [COPY_TO_TOPIC]
//
// KWIRE_SASL=MECHANISM:USER:PASSWORD authenticates (PLAIN; SCRAM is not
// linked, as in a default function binary). It prints "partition offset key value" and exits 0, or
// prints the error and exits 1; usage exits 2.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/microfn/microfn/internal/kwire"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Println("usage: take BROKERS GROUP TOPIC [COPY_TO_TOPIC]")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3], os.Args[4:]); err != nil {
		fmt.Fprintln(os.Stderr, "take:", err)
		os.Exit(1)
	}
}

func run(brokers, group, topic string, copyTo []string) error {
	seeds, err := kwire.SeedList(brokers)
	if err != nil {
		return err
	}
	opts := []kwire.Opt{kwire.SeedBrokers(seeds...), kwire.ClientID("take")}
	if s := os.Getenv("KWIRE_SASL"); s != "" {
		mech, rest, _ := strings.Cut(s, ":")
		user, pass, _ := strings.Cut(rest, ":")
		m, err := kwire.NewMechanism(mech, user, pass)
		if err != nil {
			return err
		}
		opts = append(opts, kwire.WithSASL(m))
	}
	c, err := kwire.NewClient(opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := c.Join(ctx, group, topic)
	if err != nil {
		return err
	}
	defer m.Close(context.Background())
	r, err := m.Take(ctx)
	if err != nil {
		return err
	}
	if len(copyTo) > 0 {
		out := &kwire.Record{Topic: copyTo[0], Key: r.Key, Value: r.Value, Headers: r.Headers}
		if err := c.Produce(ctx, out); err != nil {
			return err
		}
	}
	if _, err := c.ListOffsets(ctx, topic, r.Partition); err != nil {
		return err
	}
	if err := m.Commit(ctx, r.Partition, r.Offset+1, "take"); err != nil {
		return err
	}
	fmt.Printf("%d %d %s %s\n", r.Partition, r.Offset, r.Key, r.Value)
	return nil
}
