package restarter

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/microfn/microfn/internal/attempts"
	"github.com/microfn/microfn/internal/kafka"
)

// partState tracks one claimed partition for one group generation: which
// offsets are pending, the contiguous watermark of finished ones that may
// be committed, and the failed attempts of pending messages.
type partState struct {
	topic     string
	partition int32
	hwm       func() int64 // the claim's high-water mark, for lag
	// ctx ends when the partition is revoked: publishing for its messages
	// stops then, leaving them to the next owner.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	pending  []int64 // received, unfinished offsets, ascending
	next     int64   // offset after the last received; the watermark when nothing is pending
	failures map[int64]attempts.Entry
	// skip are offsets a previous owner finished above its watermark, as
	// its last commit recorded them: they are not run again.
	skip     []attempts.Range
	inflight int // messages in a process right now
	revoked  bool
	idle     *sync.Cond // signalled when inflight drops

	committed     int64
	committedMeta string
}

func newPartState(topic string, partition int32, committed kafka.Commit, initial int64, hwm func() int64) *partState {
	ps := &partState{topic: topic, partition: partition, hwm: hwm, next: initial,
		failures: map[int64]attempts.Entry{}, committed: committed.Offset, committedMeta: committed.Metadata}
	ps.ctx, ps.cancel = context.WithCancel(context.Background())
	ps.idle = sync.NewCond(&ps.mu)
	meta := committed.Metadata
	if initial < committed.Offset {
		// The committed offset was past the log's end and the consumer
		// reset (a hole): the metadata speaks of offsets of records that
		// are gone, which new records will reuse.
		meta = ""
	}
	for _, e := range attempts.Decode(meta) {
		if e.Offset >= initial {
			ps.failures[e.Offset] = e
		}
	}
	ps.skip = attempts.DecodeDone(meta)
	return ps
}

// add registers a received offset and returns the failures it had before
// (zero for a new message), or finished when a previous owner already
// finished it: then it is not pending and must not run.
func (ps *partState) add(offset int64) (prev attempts.Entry, finished bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.next = offset + 1
	if attempts.Covers(ps.skip, offset) {
		return attempts.Entry{}, true
	}
	ps.pending = append(ps.pending, offset)
	return ps.failures[offset], false
}

// begin marks a message as handed to a process; false when the partition
// was revoked and the message must be dropped.
func (ps *partState) begin() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.revoked {
		return false
	}
	ps.inflight++
	return true
}

// end undoes begin.
func (ps *partState) end() {
	ps.mu.Lock()
	ps.inflight--
	ps.mu.Unlock()
	ps.idle.Broadcast()
}

// fail records a failed attempt of offset.
func (ps *partState) fail(offset int64, failed int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.failures[offset] = attempts.Entry{Offset: offset, Failed: failed, Last: time.Now()}
}

// done marks offset finished (acked or dead-lettered).
func (ps *partState) done(offset int64) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if i, ok := slices.BinarySearch(ps.pending, offset); ok {
		ps.pending = slices.Delete(ps.pending, i, i+1)
	}
	delete(ps.failures, offset)
}

func (ps *partState) isRevoked() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.revoked
}

// markRevoked stops the partition taking new work.
func (ps *partState) markRevoked() {
	ps.mu.Lock()
	ps.revoked = true
	ps.mu.Unlock()
	ps.cancel()
}

// waitIdle waits, up to wait, for the partition's messages in processes
// to finish.
func (ps *partState) waitIdle(wait time.Duration) {
	deadline := time.Now().Add(wait)
	stop := time.AfterFunc(wait, ps.idle.Broadcast)
	defer stop.Stop()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for ps.inflight > 0 && time.Now().Before(deadline) {
		ps.idle.Wait()
	}
}

// watermark is the offset to commit: the lowest unfinished one.
func (ps *partState) watermark() int64 {
	if len(ps.pending) > 0 {
		return ps.pending[0]
	}
	return ps.next
}

// commit returns the commit to send when the watermark or the failure
// records changed since the last one.
func (ps *partState) commit() (kafka.Commit, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	wm := ps.watermark()
	var es []attempts.Entry
	for _, e := range ps.failures {
		if e.Offset >= wm {
			es = append(es, e)
		}
	}
	c := kafka.Commit{Topic: ps.topic, Partition: ps.partition, Offset: wm, Metadata: attempts.Encode(es, ps.finishedAbove())}
	if wm < 0 || (wm == ps.committed && c.Metadata == ps.committedMeta) {
		return c, false
	}
	return c, true
}

// finishedAbove returns the received offsets above the watermark that are
// no longer pending (finished while an earlier one was not), as ranges:
// the gaps between pending offsets, and after the last one. Called with
// mu held.
func (ps *partState) finishedAbove() []attempts.Range {
	var out []attempts.Range
	for i, off := range ps.pending {
		end := ps.next
		if i+1 < len(ps.pending) {
			end = ps.pending[i+1]
		}
		if off+1 < end {
			out = append(out, attempts.Range{From: off + 1, To: end - 1})
		}
	}
	return out
}

// committedAt records a successful commit.
func (ps *partState) committedAt(c kafka.Commit) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.committed, ps.committedMeta = c.Offset, c.Metadata
}

// lag is how many messages of the partition are not committed yet.
func (ps *partState) lag() int64 {
	h := ps.hwm()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if h <= 0 {
		return 0
	}
	return max(h-ps.watermark(), 0)
}
