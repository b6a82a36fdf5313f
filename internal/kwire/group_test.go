package kwire

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/microfn/microfn/internal/kafka"
)

// waitFor polls cond until it holds, failing the test after 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCommitDuringRebalance is two one-shot processes of one function:
// the first holds a record while the second joins. The first keeps its
// partitions until it commits and leaves (its commit is accepted though a
// rebalance is under way), then the second gets them and starts after the
// commit.
func TestCommitDuringRebalance(t *testing.T) {
	opts := []Opt{HeartbeatInterval(100 * time.Millisecond), RebalanceTimeout(20 * time.Second)}
	a, env := testClient(t, opts...)
	b, _ := testClient(t, opts...)
	ctx := testCtx(t)
	topic := topicName(t)
	group := "g-" + topic
	createTopic(t, env.Brokers, topic, 2)
	for i := range 2 {
		if err := a.Produce(ctx, &Record{Topic: topic, Key: keyFor(0, 2), Value: []byte{byte('0' + i)}}); err != nil {
			t.Fatal(err)
		}
	}
	ma := join(t, ctx, a, group, topic)
	r, err := ma.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}

	joined := make(chan *Member, 1)
	go func() {
		mb, err := b.Join(ctx, group, topic)
		if err != nil {
			t.Error(err)
		}
		joined <- mb
	}()
	waitFor(t, "the first member to see the rebalance", ma.rejoin.Load)
	if err := ma.Commit(ctx, r.Partition, r.Offset+1, "done"); err != nil {
		t.Fatalf("commit during the rebalance: %v", err)
	}
	if err := ma.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mb := <-joined
	if mb == nil {
		return
	}
	defer mb.Close(ctx)
	if got := mb.Assigned(); len(got) != 2 {
		t.Fatalf("second member has %v, want both partitions", got)
	}
	r2, err := mb.Take(ctx)
	if err != nil || r2.Partition != 0 || r2.Offset != r.Offset+1 {
		t.Fatalf("second member took %v %v, want partition 0 offset %d", r2, err, r.Offset+1)
	}
}

// TestNewPartitions: the group leader notices partitions added while it
// waits, rebalances, and takes a record from a new partition.
func TestNewPartitions(t *testing.T) {
	c, env := testClient(t, MetadataMaxAge(200*time.Millisecond), HeartbeatInterval(100*time.Millisecond))
	ctx := testCtx(t)
	topic := topicName(t)
	createTopic(t, env.Brokers, topic, 1)
	m := join(t, ctx, c, "g-"+topic, topic)
	admin, err := sarama.NewClusterAdmin(strings.Split(env.Brokers, ","), kafka.Config("kwire-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreatePartitions(topic, 3, nil, false); err != nil {
		t.Fatal(err)
	}
	// Write to partition 2 directly: kwire's cached metadata may still
	// say one partition.
	fresh := clientOf(t, strings.Split(env.Brokers, ","))
	waitFor(t, "metadata with 3 partitions", func() bool {
		ti, err := fresh.topic(ctx, topic, true, false)
		return err == nil && len(ti.partitions) == 3
	})
	if err := fresh.Produce(ctx, &Record{Topic: topic, Key: keyFor(2, 3), Value: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	r, err := m.Take(ctx)
	if err != nil || r.Partition != 2 || string(r.Value) != "new" {
		t.Fatalf("took %v %v, want the record on new partition 2", r, err)
	}
	if got := m.Assigned(); !slices.Equal(got, []int32{0, 1, 2}) {
		t.Fatalf("assigned %v", got)
	}
}

// TestProduceSplitsBatches: records beyond a broker's default batch size
// limit go in several requests, in order.
func TestProduceSplitsBatches(t *testing.T) {
	c, env := testClient(t)
	ctx := testCtx(t)
	topic := topicName(t)
	createTopic(t, env.Brokers, topic, 1)
	var recs []*Record
	for i := range 5 {
		recs = append(recs, &Record{Topic: topic, Value: slices.Repeat([]byte{byte('a' + i)}, 400<<10)})
	}
	if err := c.Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Offset != recs[0].Offset+int64(i) {
			t.Fatalf("offsets %d then %d at %d", recs[0].Offset, r.Offset, i)
		}
	}
}

// TestCloseDuringTake: a member closed, or a context cancelled, while Take
// waits ends it.
func TestCloseDuringTake(t *testing.T) {
	c, env := testClient(t)
	ctx := testCtx(t)
	topic := topicName(t)
	createTopic(t, env.Brokers, topic, 1)
	m := join(t, ctx, c, "g-"+topic, topic)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := m.Take(cctx); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Take after cancel: %v", err)
	}

	m2 := join(t, ctx, c, "g2-"+topic, topic)
	go func() { _, err := m2.Take(ctx); done <- err }()
	waitFor(t, "Take to start fetching", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for k := range c.conns {
			if k.role == roleFetch {
				return true
			}
		}
		return false
	})
	c.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Take after the client closed: %v, want ErrClosed", err)
	}
}

// TestCoordinatorErrors: NOT_COORDINATOR sends the member to find the
// coordinator again; the commit goes through.
func TestCoordinatorErrors(t *testing.T) {
	cl := newKfake(t)
	c := clientOf(t, cl.ListenAddrs())
	ctx := testCtx(t)
	if err := c.Produce(ctx, &Record{Topic: "t", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	m := join(t, ctx, c, "g", "t")
	r, err := m.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	finds := 0
	cl.ControlKey(int16(keyFindCoordinator), func(kmsg.Request) (kmsg.Response, error, bool) {
		cl.KeepControl()
		finds++
		return nil, nil, false
	})
	commits := 0
	cl.ControlKey(int16(keyOffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		commits++
		if commits > 1 {
			return nil, nil, false
		}
		cl.KeepControl()
		oc := req.(*kmsg.OffsetCommitRequest)
		resp := oc.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range oc.Topics {
			st := kmsg.OffsetCommitResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID}
			for _, rp := range rt.Partitions {
				st.Partitions = append(st.Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: rp.Partition, ErrorCode: int16(NotCoordinator)})
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	if err := m.Commit(ctx, r.Partition, r.Offset+1, ""); err != nil {
		t.Fatal(err)
	}
	if commits != 2 || finds != 1 {
		t.Fatalf("%d commits and %d FindCoordinator, want 2 and 1", commits, finds)
	}
}

// TestResolvedSeeds: seed brokers by name, from a hosts file and as
// "localhost".
func TestResolvedSeeds(t *testing.T) {
	cl := newKfake(t)
	_, port, _ := net.SplitHostPort(cl.ListenAddrs()[0])
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 kafka-test-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := &resolver{hostsPath: hosts, resolvConfPath: "/nonexistent", servers: []dnsServer{}}
	c := clientOf(t, []string{"kafka-test-host:" + port}, func(c *cfg) { c.res = res })
	if err := c.Produce(testCtx(t), &Record{Topic: "t", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	c2 := clientOf(t, []string{"localhost:" + port})
	if err := c2.Produce(testCtx(t), &Record{Topic: "t", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	c3 := clientOf(t, []string{"no-such-host.invalid:" + port}, func(c *cfg) { c.res = res })
	err := c3.Produce(testCtx(t), &Record{Topic: "t", Value: []byte("v")})
	if !errors.Is(err, ErrNoSuchHost) || !strings.Contains(err.Error(), "no-such-host.invalid") {
		t.Fatalf("unknown host: %v", err)
	}
}

// TestTLSDialer: the Dialer hook carries TLS (what a TLS package built on
// crypto/tls would plug in) to a TLS listener.
func TestTLSDialer(t *testing.T) {
	cl := newKfake(t, kfake.TLS(selfSignedTLS(t)))
	dialer := func(ctx context.Context, addr string) (Conn, error) {
		d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}}
		return d.DialContext(ctx, "tcp", addr)
	}
	c := clientOf(t, cl.ListenAddrs(), WithDialer(dialer))
	ctx := testCtx(t)
	if err := c.Produce(ctx, &Record{Topic: "t", Value: []byte("over TLS")}); err != nil {
		t.Fatal(err)
	}
	m := join(t, ctx, c, "g", "t")
	r, err := m.Take(ctx)
	if err != nil || string(r.Value) != "over TLS" {
		t.Fatalf("took %v %v", r, err)
	}
}
