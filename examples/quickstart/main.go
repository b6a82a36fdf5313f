// Command quickstart runs microfn end to end on the embedded broker, in
// one command:
//
//	go run ./examples/quickstart
//
// It starts the embedded Kafka-protocol broker on a free port, deploys the
// greeter function under the restarter with a pool of 4 warm processes,
// publishes some names, and prints the greetings the function emitted
// (each from its own process: see the pids) and what it dead-lettered.
// It is what `fnctl up`, `fnctl deploy ./examples/greeter --pool 4` and
// `fnctl publish names ...` do, in one process.
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
	"github.com/microfn/microfn/restarter"
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

	dir, err := os.MkdirTemp("", "microfn-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	greeter := filepath.Join(dir, "greeter")
	build := exec.CommandContext(ctx, "go", "build", "-o", greeter, "github.com/microfn/microfn/examples/greeter")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build greeter: %v\n%s", err, out)
	}

	eng, err := restarter.New(restarter.Config{Brokers: []string{e.Addr()}, LogDir: dir})
	if err != nil {
		return err
	}
	defer eng.Close(context.Background())
	if err := eng.Deploy(ctx, restarter.Spec{Name: "greeter", Binary: greeter, Topic: "names", Pool: 4}); err != nil {
		return err
	}
	fmt.Println("deployed greeter on topic names with a pool of 4 warm processes")

	b, err := broker.NewKafka(ctx, broker.KafkaConfig{Brokers: e.Addr()})
	if err != nil {
		return err
	}
	defer b.Close()
	names := []string{"ada", "grace", "alan", "edsger", "barbara"}
	for _, n := range names {
		m := message.NewMessage("", []byte(`{"name":"`+n+`"}`))
		m.Metadata.Set(broker.MetadataKey, n)
		if err := b.Publish("names", m); err != nil {
			return err
		}
	}
	if err := b.Publish("names", message.NewMessage("", []byte(`{"nom":"oops"}`))); err != nil {
		return err
	}
	fmt.Printf("published %d messages to names\n", len(names)+1)

	for _, r := range []struct {
		topic string
		n     int
	}{{"greetings", len(names)}, {"names.dlq", 1}} {
		topic := r.topic
		msgs, err := read(ctx, b, topic, r.n)
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
	st := eng.Status()[0]
	fmt.Printf("greeter: %d processed, %d dead-lettered, %d warm processes\n", st.Processed, st.DeadLettered, st.Warm)
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
