// Package bench measures microfn against the limits of the machine it runs
// on, each figure next to a baseline taken in the same run: the machine
// is shared and noisy, so absolute numbers drift while ratios hold.
package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/broker"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/pipe"
	"github.com/microfn/microfn/internal/runner"
	"github.com/microfn/microfn/restarter"
)

// SpawnRate starts, feeds one message to, and reaps the function binary n
// times with parallel at once, without a broker: the physical limit of one
// process per message. It returns processes per second.
func SpawnRate(ctx context.Context, bin string, n, parallel int, value []byte) (float64, error) {
	r, _, err := spawnRate(ctx, bin, n, parallel, value)
	return r, err
}

// spawnRate is SpawnRate that also returns this process's CPU time per
// spawn: what creating and reaping a process costs its parent.
func spawnRate(ctx context.Context, bin string, n, parallel int, value []byte) (float64, time.Duration, error) {
	cpu0 := selfCPU()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, parallel)
	start := time.Now()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				if err := spawnOne(bin, value); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	return float64(n) / time.Since(start).Seconds(), (selfCPU() - cpu0) / time.Duration(n), ctx.Err()
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// spawnOne is one function process's life as the restarter lives it,
// started, fed and reaped by the restarter's own runner, in the
// environment the restarter gives function processes.
func spawnOne(bin string, value []byte) error {
	p, err := runner.Start(runner.Config{Binary: bin, Env: append(os.Environ(), runner.FunctionEnv...)})
	if err != nil {
		return err
	}
	if err := p.Ready(); err != nil {
		return err
	}
	m := &pipe.Message{Topic: "bench", Value: value, Attempt: 1, Deadline: time.Now().Add(time.Minute)}
	r := p.Run(m)
	p.Wait()
	if !r.OK() {
		return fmt.Errorf("%s did not acknowledge: %s: %v", bin, r.Failure, r.Err)
	}
	return nil
}

// Throughput publishes n messages to a fresh topic of 4 partitions (the
// embedded broker's default, on any broker), deploys bin on it with
// the given pool and order, and returns messages per second from the
// deployment's start to the commit of the last message.
func Throughput(ctx context.Context, brokers []string, bin string, n, pool int, order restarter.Order, value []byte) (float64, error) {
	topic := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if err := CreateTopic(brokers, topic, broker.DefaultPartitions); err != nil {
		return 0, err
	}
	if err := Publish(brokers, topic, n, value); err != nil {
		return 0, err
	}
	e, err := restarter.New(restarter.Config{Brokers: brokers, CommitInterval: 20 * time.Millisecond})
	if err != nil {
		return 0, err
	}
	defer e.Close(context.Background())
	client, err := sarama.NewClient(brokers, kafka.Config("microfn-bench"))
	if err != nil {
		return 0, err
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, err
	}
	spec := restarter.Spec{Name: topic, Binary: bin, Topic: topic, Pool: pool, Order: order}
	start := time.Now()
	if err := e.Deploy(ctx, spec); err != nil {
		return 0, err
	}
	for {
		c, err := kafka.FetchCommitted(client, topic, topic, parts)
		if err != nil {
			return 0, err
		}
		var done int64
		for _, p := range c {
			done += max(p.Offset, 0)
		}
		if done >= int64(n) {
			return float64(n) / time.Since(start).Seconds(), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%d of %d committed: %w", done, n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Publish writes n messages of value to topic, each with a random key.
func Publish(brokers []string, topic string, n int, value []byte) error {
	return publish(nil, brokers, topic, n, value)
}

func publish(conn *kafka.Conn, brokers []string, topic string, n int, value []byte) error {
	p, err := sarama.NewSyncProducer(brokers, conn.Config("microfn-bench"))
	if err != nil {
		return err
	}
	defer p.Close()
	batch := make([]*sarama.ProducerMessage, 0, 500)
	for i := range n {
		key := make([]byte, 8)
		rand.Read(key)
		batch = append(batch, kafka.ProducerMessage(topic, key, value, nil))
		if len(batch) == cap(batch) || i == n-1 {
			if err := p.SendMessages(batch); err != nil {
				return errors.Join(errors.New("publish"), err)
			}
			batch = batch[:0]
		}
	}
	return nil
}

// CreateTopic creates topic with the given partition count: every figure
// runs on the same partitions whatever the broker's num.partitions, and on
// a Kafka that creates no topics on first use.
func CreateTopic(brokers []string, topic string, partitions int) error {
	return createTopic(nil, brokers, topic, partitions)
}

func createTopic(conn *kafka.Conn, brokers []string, topic string, partitions int) error {
	admin, err := sarama.NewClusterAdmin(brokers, conn.Config("microfn-bench"))
	if err != nil {
		return err
	}
	defer admin.Close()
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: -1}, false)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}
