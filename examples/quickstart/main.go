// Command quickstart runs a first microfn function end to end on the
// embedded broker, in one command:
//
//	go run ./examples/quickstart
//
// It starts the embedded Kafka-protocol broker on a free port, publishes
// three names, runs the greeter function standalone once per message (each
// run takes one message, handles it, commits and exits), and prints the
// greetings it emitted and what it dead-lettered.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/microfn/microfn/broker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Printf("embedded broker on %s\n", e.Addr())

	b, err := broker.NewKafka(ctx, broker.KafkaConfig{Brokers: e.Addr()})
	if err != nil {
		return err
	}
	defer b.Close()
	names := []string{`{"name":"ada"}`, `{"name":"grace"}`, `{"nom":"oops"}`}
	for _, n := range names {
		if err := b.Publish("names", message.NewMessage("", []byte(n))); err != nil {
			return err
		}
	}
	fmt.Printf("published %d messages to names\n", len(names))

	dir, err := os.MkdirTemp("", "microfn-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	greeter := filepath.Join(dir, "greeter")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", greeter, "github.com/microfn/microfn/examples/greeter").CombinedOutput(); err != nil {
		return fmt.Errorf("build greeter: %v\n%s", err, out)
	}
	for range names {
		cmd := exec.CommandContext(ctx, greeter)
		cmd.Env = append(os.Environ(), "FN_BROKERS="+e.Addr())
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("greeter: %w", err)
		}
	}

	for _, topic := range []string{"greetings", "names.dlq"} {
		msgs, err := read(ctx, b, topic, map[string]int{"greetings": 2, "names.dlq": 1}[topic])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			fmt.Printf("%s: %s", topic, m.Payload)
			if r := m.Metadata.Get("fn_reason"); r != "" {
				fmt.Printf(" (reason %s: %s)", r, m.Metadata.Get("fn_error"))
			}
			fmt.Println()
		}
	}
	return nil
}

func read(ctx context.Context, b *broker.Kafka, topic string, n int) ([]*message.Message, error) {
	sub, err := b.Subscriber("quickstart-reader")
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	var out []*message.Message
	for len(out) < n {
		select {
		case m := <-ch:
			m.Ack()
			out = append(out, m)
		case <-ctx.Done():
			return out, fmt.Errorf("read %s: %d of %d messages: %w", topic, len(out), n, ctx.Err())
		}
	}
	return out, nil
}
