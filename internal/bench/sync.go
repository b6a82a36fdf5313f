package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/broker"
	"github.com/microfn/microfn/internal/kafka"
)

// DiskWriteRate measures the embedded broker with a data directory (in
// $TMPDIR): n rounds of one produced message and one offset commit, each
// acknowledged before the next, so that every write is a batch of its
// own. With sync, the broker fsyncs each before acknowledging it (fnctl
// up --sync). It returns produce+commit pairs per second.
func DiskWriteRate(ctx context.Context, n int, sync bool, value []byte) (float64, error) {
	dir, err := os.MkdirTemp("", "microfn-bench-broker-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 1, SyncWrites: sync})
	if err != nil {
		return 0, err
	}
	defer e.Close()
	client, err := sarama.NewClient([]string{e.Addr()}, kafka.Config("microfn-bench"))
	if err != nil {
		return 0, err
	}
	defer client.Close()
	p, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	const topic, group = "bench-disk", "bench-disk"
	// The first write creates the topic and its files: not measured.
	if _, _, err := p.SendMessage(kafka.ProducerMessage(topic, nil, value, nil)); err != nil {
		return 0, err
	}
	start := time.Now()
	for i := range n {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		_, off, err := p.SendMessage(kafka.ProducerMessage(topic, nil, value, nil))
		if err != nil {
			return 0, fmt.Errorf("produce %d: %w", i, err)
		}
		if err := kafka.CommitOffsets(client, group, -1, "", []kafka.Commit{{Topic: topic, Offset: off + 1}}); err != nil {
			return 0, fmt.Errorf("commit %d: %w", i, err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
