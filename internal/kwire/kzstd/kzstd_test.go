package kzstd

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/kwire"
)

// TestSaramaZstd: with this package imported, kwire reads a batch sarama
// compressed with zstd.
func TestSaramaZstd(t *testing.T) {
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.SeedTopics(1, "z"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cfg := kafka.Config("kzstd-test")
	cfg.Producer.Compression = sarama.CompressionZSTD
	cfg.Producer.Flush.Messages = 5
	cfg.Producer.Flush.Frequency = time.Second
	p, err := sarama.NewSyncProducer(cl.ListenAddrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for i := range 5 {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: "z", Value: sarama.StringEncoder(strings.Repeat(fmt.Sprintf("zstd %d ", i), 100))})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	p.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := kwire.NewClient(kwire.SeedBrokers(cl.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, err := c.Join(ctx, "g", "z")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	if err := m.Commit(ctx, 0, 3, ""); err != nil {
		t.Fatal(err)
	}
	m.Close(ctx)
	m, err = c.Join(ctx, "g", "z")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	r, err := m.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Offset != 3 || string(r.Value) != strings.Repeat("zstd 3 ", 100) {
		t.Fatalf("took %d %.20q", r.Offset, r.Value)
	}
}
