package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"

	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/kconn"
)

// TailOptions are the flags of `fnctl tail`.
type TailOptions struct {
	IO            IO
	Brokers       string
	Kafka         kconn.Settings
	Topic         string
	FromBeginning bool
	Max           int
	Idle          time.Duration
	Output        string
}

func newCmdTail(streams IO, run func(context.Context, TailOptions) error) *cobra.Command {
	if run == nil {
		run = runTail
	}
	opts := TailOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Print the messages of a topic",
		Long: `Print the messages of TOPIC as they arrive. tail follows the topic:
without -n or --idle it runs until interrupted (exit code 0). -n stops
after that many messages, --idle after that long without one; with
--from-beginning, "-n N" reads the first N and "--idle 1s" reads what is
there and stops.

It reads every partition without joining a consumer group, so it changes
no committed offset. Each line shows topic/partition@offset, the key, the
headers and the value (quoted when it is not printable text); -o json
prints one JSON object per message, with value_base64 for binary values.`,
		Example: `  fnctl tail greetings                                   # follows until Ctrl-C
  fnctl tail names.dlq --from-beginning -n 10 -o json
  fnctl tail greetings --from-beginning --idle 1s        # what is there, then stop`,
		Args: rangeArgs(1, 1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Topic = args[0]
			if err := checkTopic(opts.Topic); err != nil {
				return err
			}
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if opts.Max < 0 {
				return usagef("-n must not be negative, got %d", opts.Max)
			}
			if opts.Idle < 0 {
				return usagef("--idle must not be negative, got %v", opts.Idle)
			}
			return run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Brokers, "brokers", "", "Kafka brokers host:port,... (default $FN_BROKERS or 127.0.0.1:9092)")
	addKafkaFlags(cmd.Flags(), &opts.Kafka)
	cmd.Flags().BoolVar(&opts.FromBeginning, "from-beginning", false, "start at the oldest message instead of the next new one")
	cmd.Flags().IntVarP(&opts.Max, "max", "n", 0, "stop after this many messages (0: follow, no limit)")
	cmd.Flags().DurationVar(&opts.Idle, "idle", 0, "stop after this long without a message (0: follow for ever)")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runTail(ctx context.Context, opts TailOptions) error {
	client, parts, err := topicClient(opts.Brokers, opts.Kafka, opts.IO.Err, opts.Topic)
	if err != nil {
		return err
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return err
	}
	defer consumer.Close()

	start := sarama.OffsetNewest
	if opts.FromBeginning {
		start = sarama.OffsetOldest
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan *sarama.ConsumerMessage)
	var wg sync.WaitGroup
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(opts.Topic, p, start)
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", opts.Topic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			for {
				select {
				case m := <-pc.Messages():
					select {
					case msgs <- m:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	defer wg.Wait()
	defer cancel()

	var idle <-chan time.Time
	n := 0
	for opts.Max == 0 || n < opts.Max {
		if opts.Idle > 0 {
			idle = time.After(opts.Idle)
		}
		select {
		case m := <-msgs:
			if err := printRecord(opts, m); err != nil {
				return err
			}
			n++
		case <-idle:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// Record is the JSON form of a message in `fnctl tail -o json`. Key and
// Value are null for a null key or value; ValueBase64 replaces Value when
// the value is not valid UTF-8 (likewise for the key).
type Record struct {
	Topic       string            `json:"topic"`
	Partition   int32             `json:"partition"`
	Offset      int64             `json:"offset"`
	Timestamp   time.Time         `json:"timestamp"`
	Key         *string           `json:"key"`
	KeyBase64   string            `json:"key_base64,omitempty"`
	Headers     map[string]string `json:"headers"`
	Value       *string           `json:"value"`
	ValueBase64 string            `json:"value_base64,omitempty"`
}

func printRecord(opts TailOptions, m *sarama.ConsumerMessage) error {
	if opts.Output == "json" {
		r := Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Timestamp: m.Timestamp, Headers: kafka.Headers(m.Headers)}
		r.Key, r.KeyBase64 = textOrBase64(m.Key)
		r.Value, r.ValueBase64 = textOrBase64(m.Value)
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(opts.IO.Out, "%s\n", b)
		return err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s/%d@%d", m.Topic, m.Partition, m.Offset)
	if m.Key != nil {
		fmt.Fprintf(&sb, " key=%s", quoteIfNeeded(m.Key))
	}
	h := kafka.Headers(m.Headers)
	for _, k := range slices.Sorted(maps.Keys(h)) {
		fmt.Fprintf(&sb, " %s=%s", quoteIfNeeded([]byte(k)), quoteIfNeeded([]byte(h[k])))
	}
	if m.Value == nil {
		sb.WriteString(" null")
	} else {
		sb.WriteString(" ")
		sb.WriteString(printableValue(m.Value))
	}
	_, err := fmt.Fprintln(opts.IO.Out, sb.String())
	return err
}

func textOrBase64(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

// printableValue prints a value as is when it is one line of printable
// text, quoted otherwise.
func printableValue(b []byte) string {
	s := string(b)
	if s != "" && utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// quoteIfNeeded prints b as is when it is non-empty printable text without
// spaces, quoted otherwise, so one message is always one line.
func quoteIfNeeded(b []byte) string {
	s := string(b)
	if s != "" && utf8.ValidString(s) && !strings.ContainsAny(s, " \t\r\n\"=") && strconv.CanBackquote(s) {
		return s
	}
	return strconv.Quote(s)
}
