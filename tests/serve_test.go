package tests

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microfn/microfn/broker"
	"github.com/microfn/microfn/fn"
	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/testenv"
)

// fn.Serve hosts handlers in-process with the same semantics: acked
// messages publish their events, failing ones are retried then
// dead-lettered, permanent ones dead-lettered at once.
func TestServeSemantics(t *testing.T) {
	env := testenv.Broker(t)
	topic := testenv.Topic(t)
	var calls atomic.Int32
	f := fn.New("serve-test", topic, func(ctx context.Context, v []byte) error {
		calls.Add(1)
		switch string(v) {
		case "fail":
			return errors.New("always fails")
		case "permanent":
			return fn.Permanent(errors.New("bad input"))
		}
		return fn.Emit(ctx, topic+"-out", v, fn.WithKey(string(fn.MessageFrom(ctx).Key)))
	}, fn.MaxAttempts(2), fn.Group(topic))

	b, err := broker.NewKafka(context.Background(), broker.KafkaConfig{Brokers: env.Brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	produce(t, env.Brokers, topic,
		record{key: []byte("a"), value: []byte("ok-1")}, record{key: []byte("b"), value: []byte("fail")},
		record{key: []byte("c"), value: []byte("permanent")}, record{key: []byte("a"), value: []byte("ok-2")})

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- fn.Serve(ctx, b, fn.ServeFuncs(f)) }()

	out := consumeAll(t, env.Brokers, topic+"-out", 2, 60*time.Second)
	dls := consumeAll(t, env.Brokers, topic+delivery.DeadLetterSuffix, 2, 60*time.Second)
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return within 30s of cancel")
	}
	got := map[string]string{}
	for _, m := range out {
		got[string(m.Value)] = string(m.Key)
	}
	if got["ok-1"] != "a" || got["ok-2"] != "a" {
		t.Errorf("emitted %v", got)
	}
	reasons := map[string]string{}
	for _, m := range dls {
		reasons[string(m.Value)] = header(m, delivery.HeaderReason) + "/" + header(m, delivery.HeaderAttempts)
	}
	if reasons["fail"] != "exhausted/2" || reasons["permanent"] != "permanent/1" {
		t.Errorf("dead letters %v", reasons)
	}
	if n := calls.Load(); n != 5 {
		t.Errorf("%d handler calls, want 5 (2 ok, 2 attempts of fail, 1 permanent)", n)
	}
}

// fn.Serve stopped while a handler runs lets it finish and commits its
// message, as a clean shutdown does everywhere: started again, it does not
// run the message a second time. Before, the subscription ended with ctx,
// so the acknowledgement of a message finished after it was dropped.
func TestServeStopCommitsInFlight(t *testing.T) {
	env := testenv.Broker(t)
	topic := testenv.Topic(t)
	createTopic(t, env.Brokers, topic, 1)
	started, release := make(chan struct{}, 1), make(chan struct{})
	var calls atomic.Int32
	f := fn.New("serve-stop", topic, func(ctx context.Context, v []byte) error {
		calls.Add(1)
		started <- struct{}{}
		<-release
		return nil
	}, fn.Group(topic))
	b, err := broker.NewKafka(context.Background(), broker.KafkaConfig{Brokers: env.Brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	produce(t, env.Brokers, topic, record{value: []byte("one")})

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- fn.Serve(ctx, b, fn.ServeFuncs(f)) }()
	select {
	case <-started:
	case <-time.After(settle):
		t.Fatalf("no message handled within %v", settle)
	}
	cancel()
	close(release)
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(settle):
		t.Fatalf("Serve did not return within %v of cancel", settle)
	}
	addrs, _ := kafka.ParseBrokers(env.Brokers)
	if c := committed(t, addrs, topic, topic, 0); c != 1 {
		t.Fatalf("after Serve stopped, committed offset %d, want 1: the finished message was not committed", c)
	}
}
