package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/kconn"
	"github.com/microfn/microfn/restarter"
)

// ReplayOptions are the flags of `fnctl replay`.
type ReplayOptions struct {
	IO IO
	ServerOptions
	Name    string
	Brokers string
	Kafka   kconn.Settings
	Max     int
}

func newCmdReplay(streams IO, run func(context.Context, ReplayOptions) error) *cobra.Command {
	if run == nil {
		run = runReplay
	}
	opts := ReplayOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "replay NAME",
		Short: "Send a deployment's dead-lettered messages back through it",
		Long: `Send the messages in deployment NAME's dead-letter topic back to the
topic they came from, with their key, value and original headers (the
fn_* headers the dead-lettering added are dropped), so the function gets them again.

Each dead letter is replayed once: how far the dead-letter topic has been
replayed is committed for the consumer group "<group>.replay", so running
replay again sends only what was dead-lettered since. It stops when it
has caught up with the dead-letter topic as it was at the start, or after
-n messages.`,
		Example: `  fnctl replay greeter
  fnctl replay greeter -n 1`,
		Args: rangeArgs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if err := checkName(opts.Name); err != nil {
				return err
			}
			if opts.Max < 0 {
				return usagef("-n must not be negative, got %d", opts.Max)
			}
			return run(cmd.Context(), opts)
		},
	}
	addServerFlags(cmd, &opts.ServerOptions)
	cmd.Flags().StringVar(&opts.Brokers, "brokers", "", "Kafka brokers host:port,... (default $FN_BROKERS or 127.0.0.1:9092)")
	addKafkaFlags(cmd.Flags(), &opts.Kafka)
	cmd.Flags().IntVarP(&opts.Max, "max", "n", 0, "replay at most this many messages (0: all)")
	return cmd
}

func runReplay(ctx context.Context, opts ReplayOptions) error {
	dc, err := opts.client()
	if err != nil {
		return err
	}
	sts, err := dc.List(ctx)
	if err != nil {
		return fromDaemon(err)
	}
	i := slices.IndexFunc(sts, func(s restarter.Status) bool { return s.Name == opts.Name })
	if i < 0 {
		return notFoundError{fmt.Errorf("%w: %q", restarter.ErrNotFound, opts.Name)}
	}
	spec := sts[i].Spec.WithDefaults()
	topic, dlq, group := spec.Topic, spec.DeadLetter, spec.Group
	if topic == "" {
		return fmt.Errorf("deployment %q has no spec the daemon could read (%s): deploy it again", opts.Name, sts[i].Reason)
	}
	client, parts, err := topicClient(opts.Brokers, opts.Kafka, opts.IO.Err, dlq)
	if errors.As(err, new(notFoundError)) {
		fmt.Fprintf(opts.IO.Err, "nothing to replay: dead-letter topic %s does not exist\n", dlq)
		return nil
	} else if err != nil {
		return err
	}
	defer client.Close()
	replayGroup := group + ".replay"
	done, err := kafka.FetchCommitted(client, replayGroup, dlq, parts)
	if err != nil {
		return fmt.Errorf("read how far %s was replayed: %w", dlq, err)
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return err
	}
	defer producer.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return err
	}
	defer consumer.Close()

	n := 0
	for _, p := range parts {
		end, err := client.GetOffset(dlq, p, sarama.OffsetNewest)
		if err != nil {
			return err
		}
		from := max(done[p].Offset, 0)
		if oldest, err := client.GetOffset(dlq, p, sarama.OffsetOldest); err == nil {
			from = max(from, oldest)
		}
		if from >= end || (opts.Max > 0 && n >= opts.Max) {
			continue
		}
		pc, err := consumer.ConsumePartition(dlq, p, from)
		if err != nil {
			return err
		}
		next := from
		for next < end && (opts.Max == 0 || n < opts.Max) {
			var m *sarama.ConsumerMessage
			select {
			case m = <-pc.Messages():
			case <-ctx.Done():
				pc.Close()
				return ctx.Err()
			}
			h := kafka.Headers(m.Headers)
			dest := topic
			if info, ok := delivery.ParseDeadLetter(h); ok {
				dest, h = info.Topic, info.Headers
			}
			// Published before the commit: a replay cut short repeats, it
			// never loses.
			if _, _, err := producer.SendMessage(kafka.ProducerMessage(dest, m.Key, m.Value, h)); err != nil {
				pc.Close()
				return fmt.Errorf("republish %s/%d@%d to %s: %w", dlq, p, m.Offset, dest, err)
			}
			next = m.Offset + 1
			n++
			if err := kafka.CommitOffsets(client, replayGroup, -1, "", []kafka.Commit{{Topic: dlq, Partition: p, Offset: next}}); err != nil {
				pc.Close()
				return fmt.Errorf("record the replay of %s/%d@%d: %w", dlq, p, m.Offset, err)
			}
		}
		pc.Close()
	}
	fmt.Fprintf(opts.IO.Err, "replayed %d message(s) from %s\n", n, dlq)
	return nil
}
