package restarter_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/testenv"
	"github.com/microfn/microfn/internal/testlog"
	"github.com/microfn/microfn/restarter"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

func TestSmoke(t *testing.T) {
	env := testenv.Broker(t)
	bin := filepath.Join(t.TempDir(), "testfn")
	if b, err := exec.Command("go", "build", "-race", "-o", bin, "../tests/testfn").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	brokers, _ := kafka.ParseBrokers(env.Brokers)
	e, err := restarter.New(restarter.Config{Brokers: brokers, LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	topic := testenv.Topic(t)
	// A real Kafka may create no topics on first use.
	admin, err := sarama.NewClusterAdmin(brokers, kafka.Config("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: -1}, false); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "log")
	if err := e.Deploy(context.Background(), restarter.Spec{Name: "smoke", Binary: bin, Topic: topic, Pool: 4,
		Env: []string{"TESTFN_LOG=" + logPath}}); err != nil {
		t.Fatal(err)
	}
	p, err := sarama.NewSyncProducer(brokers, kafka.Config("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	n := 50
	for i := range n {
		if _, _, err := p.SendMessage(kafka.ProducerMessage(topic, []byte{byte('a' + i%5)}, []byte("ok"), nil)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		recs, _ := testlog.Read(logPath)
		if len(recs) >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d handled; status %+v", len(recs), n, e.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("status %+v", e.Status())
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A /metrics scrape or `fnctl ls` during `fnctl scale`: Status must not
// race with Scale (run with -race).
func TestScaleWhileStatus(t *testing.T) {
	env := testenv.Broker(t)
	brokers, _ := kafka.ParseBrokers(env.Brokers)
	e, err := restarter.New(restarter.Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	if err := e.Deploy(context.Background(), restarter.Spec{Name: "scaled", Binary: "/bin/cat", Plain: true,
		Topic: testenv.Topic(t), Pool: 1}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			if err := e.Scale("scaled", 1+i%3, 1+i%3); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for {
		select {
		case <-done:
			if got := e.Status()[0]; got.Pool != 2 || got.Spec.Pool != 2 {
				t.Fatalf("pool %d (spec %d) after the last scale to 2", got.Pool, got.Spec.Pool)
			}
			return
		default:
			if s := e.Status(); s[0].Pool != s[0].Spec.Pool {
				t.Fatalf("status pool %d, spec pool %d", s[0].Pool, s[0].Spec.Pool)
			}
		}
	}
}
