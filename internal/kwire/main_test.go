package kwire

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rcrowley/go-metrics"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// sarama (the interop tests' other side) registers a meter per fetched
	// topic in go-metrics' global registry whatever registry it is given;
	// its ticker goroutine would outlive the tests. See cmd/fnctl.
	metrics.UseNilMetrics = true
	before := goleak.IgnoreCurrent()
	code := m.Run()
	if shared.cluster != nil {
		shared.cluster.Close()
	}
	removeBinaries()
	// Members heartbeat, Take fetches from several leaders at once: none
	// of those goroutines may outlive a closed member or client.
	if err := goleak.Find(before); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
		code = 1
	}
	os.Exit(code)
}

// testBroker is the broker the tests of this package share: the Kafka of
// FN_TEST_BROKERS (as in the rest of microfn's tests), or a kfake cluster
// configured like the embedded broker. It is not internal/testenv's,
// which links package fn, and fn links kwire.
type testBroker struct {
	Kind    string // "external" or "kfake"
	Brokers string
	cluster *kfake.Cluster
}

var (
	sharedOnce sync.Once
	shared     testBroker
	sharedErr  error
)

func brokerOf(t *testing.T) *testBroker {
	t.Helper()
	sharedOnce.Do(func() {
		if b := os.Getenv("FN_TEST_BROKERS"); b != "" {
			shared = testBroker{Kind: "external", Brokers: b}
			return
		}
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
		if err != nil {
			sharedErr = err
			return
		}
		shared = testBroker{Kind: "kfake", Brokers: strings.Join(c.ListenAddrs(), ","), cluster: c}
	})
	if sharedErr != nil {
		t.Fatalf("test broker: %v", sharedErr)
	}
	return &shared
}

// topicName returns a topic name unique to this test.
func topicName(t testing.TB) string {
	t.Helper()
	name := strings.NewReplacer("/", "-", " ", "_", "#", "").Replace(t.Name())
	return fmt.Sprintf("%s-%d", strings.ToLower(name), time.Now().UnixNano()%1e9)
}

// testClient returns a client of the test broker, closed with the test.
func testClient(t *testing.T, opts ...Opt) (*Client, *testBroker) {
	t.Helper()
	env := brokerOf(t)
	c, err := NewClient(append([]Opt{SeedBrokers(strings.Split(env.Brokers, ",")...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, env
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
