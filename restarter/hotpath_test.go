package restarter

import (
	"strconv"
	"testing"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/kafka"
)

// BenchmarkWatermark measures tracking one message through a partition:
// received, finished, and the commit it produces.
//
//	go test -run '^$' -bench 'Watermark|Scheduler' -benchmem ./restarter
func BenchmarkWatermark(b *testing.B) {
	ps := newPartState("t", 0, kafka.Commit{Offset: -1}, 0, func() int64 { return 0 })
	var off int64
	b.ReportAllocs()
	for b.Loop() {
		ps.add(off)
		ps.done(off)
		if c, ok := ps.commit(); ok {
			ps.committedAt(c)
		}
		off++
	}
}

// BenchmarkWatermarkOutOfOrder finishes messages in reverse order within
// windows of 64, as a pool of parallel keys does.
func BenchmarkWatermarkOutOfOrder(b *testing.B) {
	ps := newPartState("t", 0, kafka.Commit{Offset: -1}, 0, func() int64 { return 0 })
	var base int64
	b.ReportAllocs()
	for b.Loop() {
		for i := range int64(64) {
			ps.add(base + i)
		}
		for i := int64(63); i >= 0; i-- {
			ps.done(base + i)
		}
		if c, ok := ps.commit(); ok {
			ps.committedAt(c)
		}
		base += 64
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/msg")
}

// BenchmarkScheduler measures the ordering lanes: a message added, taken
// from the runnable queue and finished, across 16 keys.
func BenchmarkScheduler(b *testing.B) {
	l := newLanes()
	keys := make([][]byte, 16)
	for i := range keys {
		keys[i] = []byte("key-" + strconv.Itoa(i))
	}
	ps := newPartState("t", 0, kafka.Commit{Offset: -1}, 0, func() int64 { return 0 })
	var off int64
	b.ReportAllocs()
	for b.Loop() {
		km := &sarama.ConsumerMessage{Topic: "t", Key: keys[off%16], Offset: off}
		l.add(&item{msg: km, ps: ps, lane: laneOf(OrderKey, km.Partition, km.Key), attempt: 1})
		next, _ := l.next()
		l.done(next)
		off++
	}
}
