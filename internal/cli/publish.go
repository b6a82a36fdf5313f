package cli

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/kconn"
)

// PublishOptions are the flags of `fnctl publish`.
type PublishOptions struct {
	IO      IO
	Brokers string
	Kafka   kconn.Settings
	Topic   string
	// Value is nil when the values come from stdin, one per line.
	Value   *string
	Key     *string
	Headers map[string]string
	Null    bool
	Count   int
}

func newCmdPublish(streams IO, run func(context.Context, PublishOptions) error) *cobra.Command {
	if run == nil {
		run = runPublish
	}
	opts := PublishOptions{IO: streams}
	var key string
	var headers []string
	cmd := &cobra.Command{
		Use:   "publish TOPIC [VALUE]",
		Short: "Publish messages to a topic",
		Long: `Publish VALUE to TOPIC, or, without VALUE, each line of stdin as one message.

The value is sent byte for byte, with no content-type header unless you
give one. --null sends a null value (a tombstone). --count repeats each
message.`,
		Example: `  fnctl publish names '{"name":"ada"}' --key ada
  printf '{"name":"%s"}\n' ada bob | fnctl publish names
  fnctl publish names '{"name":"ada"}' --header content-type=application/json`,
		Args: rangeArgs(1, 2, "TOPIC and an optional VALUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Topic = args[0]
			if err := checkTopic(opts.Topic); err != nil {
				return err
			}
			if len(args) == 2 {
				opts.Value = &args[1]
			}
			if opts.Null && opts.Value != nil {
				return usagef("--null and a VALUE exclude each other")
			}
			if opts.Count < 1 {
				return usagef("--count must be at least 1, got %d", opts.Count)
			}
			if cmd.Flags().Changed("key") {
				opts.Key = &key
			}
			var err error
			if opts.Headers, err = parseHeaders(headers); err != nil {
				return err
			}
			return run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Brokers, "brokers", "", "Kafka brokers host:port,... (default $FN_BROKERS or 127.0.0.1:9092)")
	addKafkaFlags(cmd.Flags(), &opts.Kafka)
	cmd.Flags().StringVarP(&key, "key", "k", "", "record key")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, "record header key=value (repeatable)")
	cmd.Flags().BoolVar(&opts.Null, "null", false, "publish a null value")
	cmd.Flags().IntVarP(&opts.Count, "count", "c", 1, "publish each message this many times")
	return cmd
}

func runPublish(ctx context.Context, opts PublishOptions) error {
	brokers, err := kafka.Brokers(opts.Brokers)
	if err != nil {
		return usageError{err}
	}
	conn, err := kafkaConn(opts.Kafka, opts.IO.Err)
	if err != nil {
		return err
	}
	client, err := conn.NewClient(brokers, conn.Config("fnctl"))
	if err != nil {
		return err
	}
	defer client.Close()
	p, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return fmt.Errorf("cannot reach Kafka at %v: %w", brokers, err)
	}
	defer p.Close()
	// A broker that does not create topics on first use refuses a write
	// to a missing topic; create it as Kafka's auto-creation would.
	missing := kafka.NewTopics(client, nil).Ensure(opts.Topic)

	var key []byte
	if opts.Key != nil {
		key = []byte(*opts.Key)
	}
	n := 0
	batch := make([]*sarama.ProducerMessage, 0, 512)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := p.SendMessages(batch); err != nil {
			if missing != nil {
				err = missing // says why better than the produce's "unknown topic"
			}
			return fmt.Errorf("publish to %s: %w", opts.Topic, err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	add := func(value []byte) error {
		for range opts.Count {
			batch = append(batch, kafka.ProducerMessage(opts.Topic, key, value, opts.Headers))
			if len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	switch {
	case opts.Null:
		err = add(nil)
	case opts.Value != nil:
		err = add([]byte(*opts.Value))
	default:
		sc := bufio.NewScanner(opts.IO.In)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() && err == nil && ctx.Err() == nil {
			err = add([]byte(strings.TrimSuffix(sc.Text(), "\r")))
		}
		if err == nil {
			err = sc.Err()
		}
	}
	if err == nil {
		err = flush()
	}
	fmt.Fprintf(opts.IO.Err, "published %d message(s) to %s\n", n, opts.Topic)
	return err
}
