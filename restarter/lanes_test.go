package restarter

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func msgItem(order Order, partition int32, key string, offset int64) *item {
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	return &item{msg: &sarama.ConsumerMessage{Partition: partition, Key: k, Offset: offset},
		lane: laneOf(order, partition, k), attempt: 1}
}

// runnable takes every runnable message without finishing any.
func runnable(l *lanes) string {
	var out []string
	l.mu.Lock()
	n := len(l.ready)
	l.mu.Unlock()
	for range n {
		it, _ := l.next()
		out = append(out, fmt.Sprintf("%d@%d", it.msg.Partition, it.msg.Offset))
	}
	return strings.Join(out, " ")
}

func TestLanesKeyOrder(t *testing.T) {
	l := newLanes()
	// Partition 0: keys a, b, a, none, a; partition 1: key a.
	items := []*item{msgItem(OrderKey, 0, "a", 0), msgItem(OrderKey, 0, "b", 1), msgItem(OrderKey, 0, "a", 2),
		msgItem(OrderKey, 0, "", 3), msgItem(OrderKey, 0, "a", 4), msgItem(OrderKey, 1, "a", 0)}
	for _, it := range items {
		l.add(it)
	}
	if got := runnable(l); got != "0@0 0@1 0@3 1@0" {
		t.Fatalf("runnable %q: the same key of one partition runs one at a time, other keys, no key and other partitions do not wait", got)
	}
	l.done(items[1]) // b has nothing queued
	l.done(items[3]) // no lane
	if got := runnable(l); got != "" {
		t.Fatalf("runnable %q after finishing b and the keyless message, want none", got)
	}
	l.done(items[0])
	if got := runnable(l); got != "0@2" {
		t.Fatalf("runnable %q after a@0, want its next, 0@2", got)
	}
	l.done(items[2])
	if got := runnable(l); got != "0@4" {
		t.Fatalf("runnable %q after a@2, want 0@4", got)
	}
	l.done(items[4])
	l.done(items[5])
	if len(l.busy) != 0 || len(l.queued) != 0 {
		t.Fatalf("lanes left behind: busy %v queued %v", l.busy, l.queued)
	}
}

func TestLanesPartitionAndNoneOrder(t *testing.T) {
	l := newLanes()
	for off := range int64(3) {
		l.add(msgItem(OrderPartition, 0, fmt.Sprint(off), off))
	}
	l.add(msgItem(OrderPartition, 1, "x", 0))
	if got := runnable(l); got != "0@0 1@0" {
		t.Fatalf("partition order: runnable %q, want 0@0 1@0", got)
	}
	n := newLanes()
	for off := range int64(3) {
		n.add(msgItem(OrderNone, 0, "same", off))
	}
	if got := runnable(n); got != "0@0 0@1 0@2" {
		t.Fatalf("no order: runnable %q, want all three", got)
	}
}

func TestLanesRetryHoldsTheLane(t *testing.T) {
	l := newLanes()
	first, second := msgItem(OrderKey, 0, "a", 0), msgItem(OrderKey, 0, "a", 1)
	l.add(first)
	l.next()
	l.add(second)
	l.retryAfter(first, time.Millisecond) // a failed attempt: the lane stays held
	it, _ := l.next()
	if it != first {
		t.Fatalf("after the backoff got offset %d, want the retried 0", it.msg.Offset)
	}
	if got := runnable(l); got != "" {
		t.Fatalf("runnable %q while the retried message holds its lane", got)
	}
	l.done(first)
	if it, _ := l.next(); it != second {
		t.Fatalf("got offset %d, want 1 once 0 is done", it.msg.Offset)
	}
}

func TestLanesAddAfterHoldsTheLaneDuringTheBackoff(t *testing.T) {
	l := newLanes()
	first, second := msgItem(OrderKey, 0, "a", 0), msgItem(OrderKey, 0, "a", 1)
	l.addAfter(first, time.Millisecond) // a previous owner's failed attempt
	l.add(second)
	if it, _ := l.next(); it != first {
		t.Fatalf("got offset %d first, want 0 after its backoff", it.msg.Offset)
	}
}

func TestLanesCloseWakesNext(t *testing.T) {
	l := newLanes()
	got := make(chan bool)
	go func() {
		_, ok := l.next()
		got <- ok
	}()
	l.close()
	select {
	case ok := <-got:
		if ok {
			t.Fatal("next returned a message after close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("next still waiting 5s after close")
	}
}

// The pool grows for the runnable messages only: messages held back by
// their key do not count.
func TestLanesRunnableCountsWhatMayRunNow(t *testing.T) {
	l := newLanes()
	for i := range 10 {
		l.add(msgItem(OrderKey, 0, "same", int64(i)))
	}
	if n := l.runnable(); n != 1 {
		t.Fatalf("10 messages of one key: %d runnable, want 1", n)
	}
	for i := range 3 {
		l.add(msgItem(OrderKey, 0, fmt.Sprint("k", i), int64(10+i)))
	}
	if n := l.runnable(); n != 4 {
		t.Fatalf("and 3 of keys of their own: %d runnable, want 4", n)
	}
}
