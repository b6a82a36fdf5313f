package kwire

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/microfn/microfn/internal/kafka"
)

// newKfake starts a kfake cluster on loopback for a test that needs one of
// its own (fault injection, several brokers, SASL, old versions).
func newKfake(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func clientOf(t *testing.T, addrs []string, opts ...Opt) *Client {
	t.Helper()
	c, err := NewClient(append([]Opt{SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// createTopic creates a topic with n partitions through sarama (kwire
// creates topics only with the broker's defaults).
func createTopic(t *testing.T, brokers string, topic string, n int32) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(strings.Split(brokers, ","), kafka.Config("kwire-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: n, ReplicationFactor: 1}, false); err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Fatal(err)
	}
}

func join(t *testing.T, ctx context.Context, c *Client, group, topic string) *Member {
	t.Helper()
	m, err := c.Join(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// TestTakeCommitReadBack is the one-shot path: join, take the first
// record, commit it with metadata, leave; the commit and its metadata are
// read back, and the next member starts after it.
func TestTakeCommitReadBack(t *testing.T) {
	c, env := testClient(t)
	ctx := testCtx(t)
	topic := topicName(t)
	createTopic(t, env.Brokers, topic, 1)
	group := "g-" + topic
	recs := []*Record{
		{Topic: topic, Key: []byte("a"), Value: []byte("first")},
		{Topic: topic, Key: []byte("b"), Value: []byte("second")},
	}
	if err := c.Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}

	m := join(t, ctx, c, group, topic)
	if got := m.Assigned(); !slices.Equal(got, []int32{0}) {
		t.Fatalf("assigned %v, want [0]", got)
	}
	if cm, ok := m.Committed(0); !ok || cm.Offset != -1 {
		t.Fatalf("committed before any commit: %+v %v, want offset -1", cm, ok)
	}
	r, err := m.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Value) != "first" || r.Offset != recs[0].Offset || r.Topic != topic {
		t.Fatalf("took %+v, want the first record at %d", r, recs[0].Offset)
	}
	if _, err := m.Take(ctx); !errors.Is(err, ErrTaken) {
		t.Fatalf("second Take: %v, want ErrTaken", err)
	}
	if err := m.Commit(ctx, r.Partition, r.Offset+1, "attempts=1;done"); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := c.FetchCommitted(ctx, group, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != (Committed{Offset: r.Offset + 1, Metadata: "attempts=1;done"}) {
		t.Fatalf("committed %+v", got[0])
	}

	m2 := join(t, ctx, c, group, topic)
	if cm, _ := m2.Committed(0); cm.Metadata != "attempts=1;done" {
		t.Fatalf("next member sees committed %+v", cm)
	}
	r2, err := m2.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(r2.Value) != "second" {
		t.Fatalf("next member took %q, want second", r2.Value)
	}
	offs, err := c.ListOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if offs[0] != (Offsets{Start: 0, End: 2}) {
		t.Fatalf("offsets %+v, want [0, 2]", offs)
	}
}

// TestProduceReadBySarama: what kwire writes, sarama reads the same: keys
// routed as sarama routes them, null and empty keys and values distinct,
// headers in order.
func TestProduceReadBySarama(t *testing.T) {
	c, env := testClient(t)
	ctx := testCtx(t)
	topic := topicName(t)
	createTopic(t, env.Brokers, topic, 4)
	in := []*Record{
		{Topic: topic, Key: []byte("k1"), Value: []byte("v1"), Headers: []Header{{"h1", []byte("x")}, {"h1", []byte("y")}, {"nil", nil}}},
		{Topic: topic, Key: []byte("k1"), Value: nil},
		{Topic: topic, Key: []byte{}, Value: []byte{}},
		{Topic: topic, Key: nil, Value: []byte("no key")},
		{Topic: topic, Key: []byte("k2"), Value: []byte("v2")},
	}
	if err := c.Produce(ctx, in...); err != nil {
		t.Fatal(err)
	}
	for _, r := range in {
		if r.Key != nil && r.Partition != HashPartition(r.Key, 4) {
			t.Fatalf("key %q went to %d", r.Key, r.Partition)
		}
	}
	if in[1].Offset != in[0].Offset+1 {
		t.Fatalf("same key, offsets %d and %d: want consecutive", in[0].Offset, in[1].Offset)
	}

	consumer, err := sarama.NewConsumer(strings.Split(env.Brokers, ","), kafka.Config("kwire-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for _, want := range in {
		pc, err := consumer.ConsumePartition(topic, want.Partition, want.Offset)
		if err != nil {
			t.Fatal(err)
		}
		var got *sarama.ConsumerMessage
		select {
		case got = <-pc.Messages():
		case <-ctx.Done():
			t.Fatal("sarama read nothing")
		}
		pc.Close()
		if (got.Key == nil) != (want.Key == nil) || !bytes.Equal(got.Key, want.Key) ||
			(got.Value == nil) != (want.Value == nil) || !bytes.Equal(got.Value, want.Value) {
			t.Errorf("at %d/%d sarama read key %q (nil %v) value %q (nil %v), want key %q (nil %v) value %q (nil %v)",
				want.Partition, want.Offset, got.Key, got.Key == nil, got.Value, got.Value == nil, want.Key, want.Key == nil, want.Value, want.Value == nil)
		}
		var hs []Header
		for _, h := range got.Headers {
			hs = append(hs, Header{string(h.Key), h.Value})
		}
		if len(hs) != len(want.Headers) {
			t.Errorf("headers %v, want %v", hs, want.Headers)
		}
		for i := range hs {
			if hs[i].Key != want.Headers[i].Key || !bytes.Equal(hs[i].Value, want.Headers[i].Value) {
				t.Errorf("header %d %v, want %v", i, hs[i], want.Headers[i])
			}
		}
	}
}

// saramaMember is a sarama consumer-group member with the range strategy,
// as the restarter runs it, that records its claims and consumes nothing.
type saramaMember struct {
	group  sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	claims []int32
	setups chan []int32
}

func (s *saramaMember) Setup(sess sarama.ConsumerGroupSession) error {
	claims := slices.Clone(sess.Claims()[topicOf(sess)])
	slices.Sort(claims)
	s.mu.Lock()
	s.claims = claims
	s.mu.Unlock()
	s.setups <- claims
	return nil
}

func topicOf(sess sarama.ConsumerGroupSession) string {
	for t := range sess.Claims() {
		return t
	}
	return ""
}

func (s *saramaMember) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (s *saramaMember) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	<-sess.Context().Done() // hold the claim, consume nothing
	return nil
}

func startSaramaMember(t *testing.T, brokers, group, topic string) *saramaMember {
	t.Helper()
	cfg := kafka.Config("sarama-member")
	g, err := sarama.NewConsumerGroup(strings.Split(brokers, ","), group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &saramaMember{group: g, cancel: cancel, done: make(chan struct{}), setups: make(chan []int32, 16)}
	go func() {
		defer close(s.done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, s); err != nil {
				return
			}
		}
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *saramaMember) stop() {
	s.cancel()
	<-s.done
	s.group.Close()
}

// nextSetup waits for the sarama member's next generation.
func (s *saramaMember) nextSetup(t *testing.T, ctx context.Context) []int32 {
	t.Helper()
	select {
	case c := <-s.setups:
		return c
	case <-ctx.Done():
		t.Fatal("the sarama member never joined")
		return nil
	}
}

// keyFor returns a key that HashPartition sends to partition p of n.
func keyFor(p, n int32) []byte {
	for i := 0; ; i++ {
		k := fmt.Appendf(nil, "key-%d", i)
		if HashPartition(k, n) == p {
			return k
		}
	}
}

// TestGroupSharedWithSarama: a kwire member and a sarama member of the
// same group (range strategy, as the restarter's) split the partitions;
// when the sarama member leaves, the kwire member, waiting in Take,
// rejoins, gets its partitions, and takes a record produced to one of
// them.
func TestGroupSharedWithSarama(t *testing.T) {
	c, env := testClient(t, HeartbeatInterval(200*time.Millisecond))
	ctx := testCtx(t)
	topic := topicName(t)
	group := "g-" + topic
	createTopic(t, env.Brokers, topic, 4)

	s := startSaramaMember(t, env.Brokers, group, topic)
	if got := s.nextSetup(t, ctx); len(got) != 4 {
		t.Fatalf("sarama alone claims %v, want all 4", got)
	}
	m := join(t, ctx, c, group, topic)
	mine := m.Assigned()
	theirs := s.nextSetup(t, ctx)
	all := append(slices.Clone(mine), theirs...)
	slices.Sort(all)
	if len(mine) != 2 || len(theirs) != 2 || !slices.Equal(all, []int32{0, 1, 2, 3}) {
		t.Fatalf("kwire %v, sarama %v: want two each, all four", mine, theirs)
	}

	s.stop() // sarama leaves the group
	target := theirs[0]
	if err := c.Produce(ctx, &Record{Topic: topic, Key: keyFor(target, 4), Value: []byte("moved")}); err != nil {
		t.Fatal(err)
	}
	r, err := m.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Partition != target || string(r.Value) != "moved" {
		t.Fatalf("took %+v, want the record on partition %d", r, target)
	}
	if got := m.Assigned(); len(got) != 4 {
		t.Fatalf("after sarama left, kwire has %v, want all 4", got)
	}
	if err := m.Commit(ctx, r.Partition, r.Offset+1, ""); err != nil {
		t.Fatal(err)
	}
}

// TestSaramaCompressedBatches: kwire reads batches sarama compressed with
// gzip, lz4 and snappy (zstd: kwire/kzstd's tests), from the first record
// and from the middle of a batch.
func TestSaramaCompressedBatches(t *testing.T) {
	c, env := testClient(t)
	ctx := testCtx(t)
	for _, codec := range []sarama.CompressionCodec{sarama.CompressionGZIP, sarama.CompressionLZ4, sarama.CompressionSnappy} {
		t.Run(codec.String(), func(t *testing.T) {
			topic := topicName(t)
			createTopic(t, env.Brokers, topic, 1)
			produceCompressed(t, env.Brokers, topic, codec)
			group := "g-" + topic
			m := join(t, ctx, c, group, topic)
			r, err := m.Take(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r.Offset != 0 || string(r.Value) != strings.Repeat("record 0 ", 50) {
				t.Fatalf("took %d %.20q", r.Offset, r.Value)
			}
			if err := m.Commit(ctx, 0, 7, ""); err != nil {
				t.Fatal(err)
			}
			m.Close(ctx)
			m2 := join(t, ctx, c, group, topic)
			r, err = m2.Take(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r.Offset != 7 || string(r.Value) != strings.Repeat("record 7 ", 50) || string(r.Headers[0].Value) != "7" {
				t.Fatalf("from offset 7 took %d %.20q %v", r.Offset, r.Value, r.Headers)
			}
		})
	}
}

// produceCompressed writes ten records as one compressed batch.
func produceCompressed(t *testing.T, brokers, topic string, codec sarama.CompressionCodec) {
	t.Helper()
	cfg := kafka.Config("kwire-test")
	cfg.Producer.Compression = codec
	cfg.Producer.Flush.Messages = 10
	cfg.Producer.Flush.Frequency = time.Second
	p, err := sarama.NewSyncProducer(strings.Split(brokers, ","), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for i := range 10 {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(strings.Repeat(fmt.Sprintf("record %d ", i), 50)),
			Headers: []sarama.RecordHeader{{Key: []byte("i"), Value: fmt.Appendf(nil, "%d", i)}}})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

// TestCommitAfterLosingMembership: a member that took a record and held
// it while the group rebalanced past it (beyond the rebalance timeout) is
// refused its commit, so it cannot overwrite the new owner's progress.
func TestCommitAfterLosingMembership(t *testing.T) {
	cl := newKfake(t)
	addrs := cl.ListenAddrs()
	opts := []Opt{RebalanceTimeout(time.Second), HeartbeatInterval(100 * time.Millisecond), SessionTimeout(6 * time.Second)}
	a := clientOf(t, addrs, opts...)
	b := clientOf(t, addrs, opts...)
	ctx := testCtx(t)
	topic, group := "lost", "g-lost"
	if err := a.Produce(ctx, &Record{Topic: topic, Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	ma := join(t, ctx, a, group, topic)
	r, err := ma.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// b's join starts a rebalance that a, holding its record, does not
	// follow: after the rebalance timeout the group goes on without it.
	mb := join(t, ctx, b, group, topic)
	if got := mb.Assigned(); len(got) != 4 {
		t.Fatalf("the new member has %v, want all 4 partitions", got)
	}
	err = ma.Commit(ctx, r.Partition, r.Offset+1, "")
	if !errors.Is(err, ErrNotMember) {
		t.Fatalf("commit by the removed member: %v, want ErrNotMember", err)
	}
	t.Logf("refused: %v", err)
}

// TestHoles: a committed offset past the log's end (the topic was
// re-created) or before its start (records deleted) is reported, and Take
// starts the partition at the log's start.
func TestHoles(t *testing.T) {
	cl := newKfake(t)
	c := clientOf(t, cl.ListenAddrs())
	ctx := testCtx(t)
	topic, group := "holes", "g-holes"
	if err := cl.CreateTopic(topic, 1, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := c.Produce(ctx, &Record{Topic: topic, Value: fmt.Appendf(nil, "r%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	commitAs := func(offset int64) {
		m := join(t, ctx, c, group, topic)
		if err := m.Commit(ctx, 0, offset, "meta"); err != nil {
			t.Fatal(err)
		}
		m.Close(ctx)
	}

	commitAs(100)
	m := join(t, ctx, c, group, topic)
	r, err := m.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Hole{{Topic: topic, Partition: 0, Committed: 100, Offsets: Offsets{Start: 0, End: 5}}}
	if r.Offset != 0 || !slices.Equal(m.Holes(), want) {
		t.Fatalf("took %d, holes %+v; want 0 and %+v", r.Offset, m.Holes(), want)
	}
	m.Close(ctx)

	if err := cl.DeleteRecords(topic, 0, 3); err != nil {
		t.Fatal(err)
	}
	commitAs(1)
	m = join(t, ctx, c, group, topic)
	r, err = m.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want = []Hole{{Topic: topic, Partition: 0, Committed: 1, Offsets: Offsets{Start: 3, End: 5}}}
	if r.Offset != 3 || !slices.Equal(m.Holes(), want) {
		t.Fatalf("took %d, holes %+v; want 3 and %+v", r.Offset, m.Holes(), want)
	}
}

// TestLeaderMoves: a produce and a fetch sent to a broker that is no
// longer the partition's leader are answered NOT_LEADER_OR_FOLLOWER; kwire
// refreshes metadata and goes to the new leader.
func TestLeaderMoves(t *testing.T) {
	cl := newKfake(t, kfake.NumBrokers(3))
	c := clientOf(t, cl.ListenAddrs()[:1])
	ctx := testCtx(t)
	topic, group := "moves", "g-moves"
	if err := cl.CreateTopic(topic, 6, nil); err != nil {
		t.Fatal(err)
	}
	var recs []*Record
	for p := range int32(6) {
		recs = append(recs, &Record{Topic: topic, Key: keyFor(p, 6), Value: fmt.Appendf(nil, "p%d", p)})
	}
	if err := c.Produce(ctx, recs...); err != nil { // to three leaders
		t.Fatal(err)
	}
	// Move every leader: kwire's cached metadata is now wrong.
	for p := range int32(6) {
		next := (cl.LeaderFor(topic, p) + 1) % 3
		if err := cl.MoveTopicPartition(topic, p, next); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Produce(ctx, &Record{Topic: topic, Key: keyFor(2, 6), Value: []byte("after move")}); err != nil {
		t.Fatal(err)
	}
	m := join(t, ctx, c, group, topic)
	r, err := m.Take(ctx) // fetches from three leaders at once
	if err != nil {
		t.Fatal(err)
	}
	if r.Offset != 0 || string(r.Value) != fmt.Sprintf("p%d", r.Partition) {
		t.Fatalf("took %+v", r)
	}
}

// TestNoAutoCreate: against a broker that creates no topics on first use,
// Produce creates the topic with CreateTopics (the broker's defaults), a
// second CreateTopics is not an error, Join on a missing topic fails at
// once, and NoTopicCreation makes Produce fail.
func TestNoAutoCreate(t *testing.T) {
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	c := clientOf(t, cl.ListenAddrs())
	ctx := testCtx(t)
	if err := c.Produce(ctx, &Record{Topic: "created", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if ps := cl.PartitionInfos("created"); len(ps) != 3 {
		t.Fatalf("%d partitions, want the broker's default, 3", len(ps))
	}
	if err := c.CreateTopics(ctx, "created"); err != nil {
		t.Fatalf("creating an existing topic: %v", err)
	}
	if _, err := c.Join(ctx, "g", "missing"); !errors.Is(err, ErrUnknownTopic) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("join on a missing topic: %v, want ErrUnknownTopic naming it", err)
	}
	strict := clientOf(t, cl.ListenAddrs(), NoTopicCreation())
	err = strict.Produce(ctx, &Record{Topic: "missing", Value: []byte("x")})
	var pe *ProduceError
	if !errors.As(err, &pe) || !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("produce without creation: %v, want a ProduceError with ErrUnknownTopic", err)
	}
}

// TestProducePartitionErrors: a partition the broker refuses is reported
// in a ProduceError; the other partitions' records are written.
func TestProducePartitionErrors(t *testing.T) {
	cl := newKfake(t)
	c := clientOf(t, cl.ListenAddrs(), RetryTimeout(time.Second))
	ctx := testCtx(t)
	topic := "perr"
	if err := cl.CreateTopic(topic, 2, nil); err != nil {
		t.Fatal(err)
	}
	cl.ControlKey(int16(keyProduce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cl.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.ProduceResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID}
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				if rp.Partition == 1 {
					sp.ErrorCode = int16(MessageTooLarge)
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	err := c.Produce(ctx, &Record{Topic: topic, Key: keyFor(0, 2), Value: []byte("ok")}, &Record{Topic: topic, Key: keyFor(1, 2), Value: []byte("too big")})
	var pe *ProduceError
	if !errors.As(err, &pe) || len(pe.Partitions) != 1 || pe.Partitions[0].Partition != 1 || !errors.Is(err, MessageTooLarge) {
		t.Fatalf("got %v, want a ProduceError for partition 1 only", err)
	}
	t.Logf("%v", err)
}

// TestRetriedProduce: NOT_LEADER_OR_FOLLOWER answers twice, then the
// produce goes through.
func TestRetriedProduce(t *testing.T) {
	cl := newKfake(t)
	c := clientOf(t, cl.ListenAddrs())
	ctx := testCtx(t)
	var n int
	cl.ControlKey(int16(keyProduce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		n++
		if n > 2 {
			return nil, nil, false
		}
		cl.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.ProduceResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID}
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = int16(NotLeaderOrFollower)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	r := &Record{Topic: "retried", Value: []byte("x")}
	if err := c.Produce(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("%d produce requests, want 3", n)
	}
}

// TestBrokerUnreachable: a closed port and peers that are not Kafka fail
// with one line naming the address and the cause, without minutes of
// retries.
func TestBrokerUnreachable(t *testing.T) {
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()
	serve := func(handle func(net.Conn)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); handle(c) }()
			}
		}()
		return ln.Addr().String()
	}
	httpServer := serve(func(c net.Conn) {
		c.Read(make([]byte, 100))
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
	})
	// The silent server holds its connection, answering nothing, until
	// the test ends.
	ended := make(chan struct{})
	t.Cleanup(func() { close(ended) })
	silent := serve(func(c net.Conn) { c.Read(make([]byte, 1<<16)); <-ended })
	hangup := serve(func(c net.Conn) {})
	tlsKafka := newKfake(t, kfake.TLS(selfSignedTLS(t))).ListenAddrs()[0]

	cases := []struct {
		name, addr string
		want       []string
	}{
		{"closed port", closed, []string{closed, "connection refused"}},
		{"HTTP server", httpServer, []string{httpServer, "not a Kafka broker", "HTTP"}},
		{"silent server", silent, []string{silent, "no answer to ApiVersions"}},
		{"closes at once", hangup, []string{hangup, "connection closed by the broker"}},
		{"TLS listener", tlsKafka, []string{tlsKafka, "TLS"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := clientOf(t, []string{tc.addr}, DialTimeout(2*time.Second))
			start := time.Now()
			_, err := c.Join(testCtx(t), "g", "t")
			if err == nil {
				t.Fatal("joined")
			}
			msg := err.Error()
			t.Logf("%v after %v", msg, time.Since(start).Round(time.Millisecond))
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}
}

// selfSignedTLS is a server TLS configuration with a certificate for
// 127.0.0.1 made up on the spot.
func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kwire test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// TestReadCommitted: with ReadCommitted, Take skips a transaction that was
// aborted (and the control records); without it, it reads the aborted
// record, as the restarter's sarama consumer does.
func TestReadCommitted(t *testing.T) {
	cl := newKfake(t)
	ctx := testCtx(t)
	topic := "txn"
	if err := cl.CreateTopic(topic, 1, nil); err != nil {
		t.Fatal(err)
	}
	p, err := kgo.NewClient(kgo.SeedBrokers(cl.ListenAddrs()...), kgo.TransactionalID("tx"), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, c := range []struct {
		value string
		end   kgo.TransactionEndTry
	}{{"aborted", kgo.TryAbort}, {"committed", kgo.TryCommit}} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, kgo.StringRecord(c.value)).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := p.EndTransaction(ctx, c.end); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		opts []Opt
		want string
	}{{nil, "aborted"}, {[]Opt{ReadCommitted()}, "committed"}} {
		kc := clientOf(t, cl.ListenAddrs(), c.opts...)
		m := join(t, ctx, kc, "g-"+c.want, topic)
		r, err := m.Take(ctx)
		if err != nil || string(r.Value) != c.want {
			t.Errorf("options %v: took %v %v, want %q", c.opts, r, err, c.want)
		}
	}
}
