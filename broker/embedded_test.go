package broker_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/broker"
	"github.com/microfn/microfn/internal/kafka"
)

func startEmbedded(t *testing.T, cfg broker.EmbeddedConfig) *broker.Embedded {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	e, err := broker.StartEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func produceValues(t *testing.T, addr, topic string, values ...string) {
	t.Helper()
	p, err := sarama.NewSyncProducer([]string{addr}, kafka.Config("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, v := range values {
		if _, _, err := p.SendMessage(kafka.ProducerMessage(topic, []byte(v), []byte(v), nil)); err != nil {
			t.Fatal(err)
		}
	}
}

// readValues reads every record of topic.
func readValues(t *testing.T, addr, topic string) []string {
	t.Helper()
	client, err := sarama.NewClient([]string{addr}, kafka.Config("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for next := int64(0); next < end; {
			select {
			case m := <-pc.Messages():
				out = append(out, string(m.Value))
				next = m.Offset + 1
			case <-time.After(10 * time.Second):
				t.Fatalf("%s/%d: no record within 10s", topic, p)
			}
		}
		pc.Close()
	}
	slices.Sort(out)
	return out
}

// A data directory holding records of a topic the broker has no record of
// (as a crash of an earlier version left them) is refused with the
// directory and what to do; --recover serves them again.
func TestEmbeddedRefusesUnloadedDataAndRecovers(t *testing.T) {
	old := t.TempDir()
	e := startEmbedded(t, broker.EmbeddedConfig{DataDir: old})
	produceValues(t, e.Addr(), "lost", "a", "b", "c", "d", "e", "f")
	e.Close()

	// A directory whose broker never knew the topic, holding its files.
	data := t.TempDir()
	startEmbedded(t, broker.EmbeddedConfig{DataDir: data}).Close()
	copyDir(t, filepath.Join(old, "partitions"), filepath.Join(data, "partitions"))

	_, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: data})
	var ue *broker.UnloadedDataError
	if !errors.As(err, &ue) {
		t.Fatalf("start over unloaded data: %v, want an UnloadedDataError", err)
	}
	for _, want := range []string{data, `"lost"`, "--recover", filepath.Join(data, "partitions", "lost-")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	e = startEmbedded(t, broker.EmbeddedConfig{DataDir: data, Recover: true})
	got := readValues(t, e.Addr(), "lost")
	e.Close()
	if want := []string{"a", "b", "c", "d", "e", "f"}; !slices.Equal(got, want) {
		t.Fatalf("after recovery: %v, want %v", got, want)
	}
	// Recovered for good: a plain start loads it.
	e = startEmbedded(t, broker.EmbeddedConfig{DataDir: data})
	defer e.Close()
	if got := readValues(t, e.Addr(), "lost"); len(got) != 6 {
		t.Fatalf("after a restart: %v", got)
	}
}

// Records of a partition beyond a known topic's partition count cannot be
// recovered by creating the topic: the error says to move them away.
func TestEmbeddedRefusesPartitionsBeyondCount(t *testing.T) {
	old := t.TempDir()
	e := startEmbedded(t, broker.EmbeddedConfig{DataDir: old, Partitions: 4})
	produceValues(t, e.Addr(), "t", "a", "b", "c", "d", "e", "f", "g", "h")
	e.Close()

	data := t.TempDir()
	e = startEmbedded(t, broker.EmbeddedConfig{DataDir: data, Partitions: 1})
	produceValues(t, e.Addr(), "t", "x")
	e.Close()
	copyDir(t, filepath.Join(old, "partitions", "t-3"), filepath.Join(data, "partitions", "t-3"))

	_, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: data, Recover: true})
	var ue *broker.UnloadedDataError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "move "+filepath.Join(data, "partitions", "t-3")) {
		t.Fatalf("start: %v, want an UnloadedDataError naming t-3", err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(fmt.Errorf("copy %s: %w", from, err))
	}
}
