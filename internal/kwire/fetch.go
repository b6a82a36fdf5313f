package kwire

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Take returns the first record of the member's partitions at or after
// the group's committed offsets (the log start for a partition without
// one), long-polling until one arrives or ctx is done. While it waits it
// follows the group's rebalances; once it returns a record the member
// keeps its partitions until it is closed, so that the record can be
// committed. Control records, and with ReadCommitted records of aborted
// transactions, are skipped. A committed offset outside its partition's
// log is a hole: Take starts that partition at the log's start and lists
// it in Holes. Take is not safe to call concurrently with itself.
func (m *Member) Take(ctx context.Context) (*Record, error) {
	if m.taken.Load() {
		return nil, ErrTaken
	}
	var positions map[int32]int64
	var failingSince time.Time
	lastCheck := time.Now()
	for round := 0; ; round++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m.mu.Lock()
		closed := m.closed
		m.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if m.rejoin.Load() {
			if err := m.join(ctx); err != nil {
				return nil, err
			}
			positions = nil
		}
		if m.leaderSawNewPartitions(ctx, &lastCheck) {
			m.rejoin.Store(true)
			continue
		}
		assigned := m.Assigned()
		if len(assigned) == 0 {
			// Nothing to fetch: wait for a rebalance to give this member
			// partitions (the heartbeat notices it).
			if err := sleep(ctx, m.c.cfg.heartbeatInterval); err != nil {
				return nil, err
			}
			continue
		}
		if positions == nil {
			var err error
			if positions, err = m.startPositions(ctx, assigned); err != nil {
				return nil, err
			}
		}
		rec, err := m.fetchRound(ctx, positions, round)
		if err != nil && !retriable(err) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if m.c.isClosed() {
				return nil, ErrClosed
			}
			return nil, err
		}
		if rec != nil {
			if m.rejoin.Load() {
				continue // the partitions may be moving: do not take it
			}
			m.taken.Store(true)
			return rec, nil
		}
		if err == nil {
			failingSince = time.Time{}
			continue
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		if time.Since(failingSince) > m.c.cfg.retryTimeout {
			return nil, fmt.Errorf("%w (retried for %v)", err, m.c.cfg.retryTimeout)
		}
		if err := sleep(ctx, m.c.cfg.retryBackoff); err != nil {
			return nil, err
		}
	}
}

// leaderSawNewPartitions is the leader's periodic check of the topic's
// partition count: the group rebalances only when a member asks, and in
// the classic protocol the leader does for new partitions.
func (m *Member) leaderSawNewPartitions(ctx context.Context, last *time.Time) bool {
	m.mu.Lock()
	leader, n := m.leader, m.partitions
	m.mu.Unlock()
	if !leader || time.Since(*last) < m.c.cfg.metadataMaxAge {
		return false
	}
	*last = time.Now()
	ti, err := m.c.topic(ctx, m.topic, true, false)
	return err == nil && len(ti.partitions) != n
}

// startPositions returns where each assigned partition starts: its
// committed offset, or the log start when there is none.
func (m *Member) startPositions(ctx context.Context, assigned []int32) (map[int32]int64, error) {
	pos := make(map[int32]int64, len(assigned))
	var fresh []int32
	for _, p := range assigned {
		cm, ok := m.Committed(p)
		if ok && cm.Offset >= 0 {
			pos[p] = cm.Offset
		} else {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) > 0 {
		offs, err := m.c.ListOffsets(ctx, m.topic, fresh...)
		if err != nil {
			return nil, err
		}
		for _, p := range fresh {
			pos[p] = offs[p].Start
		}
	}
	return pos, nil
}

// fetchRound fetches once from the leader of each assigned partition (at
// the same time when there are several) and returns the first record
// found, advancing positions past what it skipped.
func (m *Member) fetchRound(ctx context.Context, positions map[int32]int64, round int) (*Record, error) {
	ti, err := m.c.topic(ctx, m.topic, false, false)
	if err != nil {
		return nil, err
	}
	parts := make([]int32, 0, len(positions))
	for p := range positions {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	// Rotate, so that a partition whose batches fill a response does not
	// starve the others.
	if len(parts) > 0 {
		r := round % len(parts)
		parts = append(parts[r:], parts[:r]...)
	}
	byLeader := make(map[int32][]int32)
	var leaders []int32
	for _, p := range parts {
		l := int32(-1)
		if int(p) < len(ti.partitions) {
			l = ti.partitions[p]
		}
		if l < 0 {
			m.c.forget(m.topic)
			return nil, &PartitionError{Topic: m.topic, Partition: p, Err: LeaderNotAvailable}
		}
		if byLeader[l] == nil {
			leaders = append(leaders, l)
		}
		byLeader[l] = append(byLeader[l], p)
	}
	if len(leaders) == 1 {
		res := m.fetchFrom(ctx, ti, leaders[0], byLeader[leaders[0]], positions)
		m.apply(res, positions)
		return res.rec, res.err
	}
	// Several leaders: the first record wins and the other long polls are
	// cancelled (their connections are closed; a one-shot member fetches no
	// more).
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan fetchResult, len(leaders))
	for _, l := range leaders {
		pos := make(map[int32]int64, len(byLeader[l]))
		for _, p := range byLeader[l] {
			pos[p] = positions[p]
		}
		go func() { results <- m.fetchFrom(rctx, ti, l, byLeader[l], pos) }()
	}
	var rec *Record
	var firstErr error
	for range leaders {
		res := <-results
		if rec != nil {
			continue
		}
		if res.rec != nil {
			rec = res.rec
			cancel()
		}
		m.apply(res, positions)
		if res.err != nil && firstErr == nil && rctx.Err() == nil {
			firstErr = res.err
		}
	}
	if rec != nil {
		return rec, nil
	}
	return nil, firstErr
}

type fetchResult struct {
	rec   *Record
	next  map[int32]int64 // new positions
	holes []Hole
	err   error
}

func (m *Member) apply(res fetchResult, positions map[int32]int64) {
	for p, o := range res.next {
		positions[p] = o
	}
	if len(res.holes) > 0 {
		m.mu.Lock()
		m.holes = append(m.holes, res.holes...)
		m.mu.Unlock()
	}
}

// fetchFrom sends one Fetch to a leader for parts, from positions.
func (m *Member) fetchFrom(ctx context.Context, ti *topicInfo, leader int32, parts []int32, positions map[int32]int64) fetchResult {
	res := fetchResult{next: make(map[int32]int64)}
	bc, err := m.c.conn(ctx, leader, roleFetch)
	if err != nil {
		res.err = err
		return res
	}
	cfg := &m.c.cfg
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = int32(cfg.fetchMaxWait.Milliseconds())
	req.MinBytes = 1
	req.MaxBytes = cfg.fetchMaxBytes
	if cfg.readCommitted {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = m.topic
	rt.TopicID = ti.id
	for _, p := range parts {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.FetchOffset = positions[p]
		rp.PartitionMaxBytes = cfg.fetchMaxBytes
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.FetchRequestTopic{rt}
	limit := int16(-1)
	if ti.id == [16]byte{} {
		limit = fetchTopicIDVersion - 1
	}
	resp, err := bc.request(ctx, req, limit, cfg.fetchMaxWait)
	if err != nil {
		res.err = err
		return res
	}
	r := resp.(*kmsg.FetchResponse)
	if err := errorCode(r.ErrorCode); err != nil {
		res.err = &BrokerError{Addr: bc.addr, Op: "Fetch", Err: err}
		return res
	}
	for _, t := range r.Topics {
		if t.Topic != m.topic && (r.Version < fetchTopicIDVersion || t.TopicID != ti.id) {
			continue
		}
		for _, fp := range t.Partitions {
			pos, ok := positions[fp.Partition]
			if !ok {
				continue
			}
			err := errorCode(fp.ErrorCode)
			switch {
			case errors.Is(err, OffsetOutOfRange):
				h, err := m.hole(ctx, fp.Partition, pos)
				if err != nil {
					res.err = err
					return res
				}
				res.holes = append(res.holes, h)
				res.next[fp.Partition] = h.Start
				continue
			case err != nil && Error(fp.ErrorCode).Retriable():
				m.c.forget(m.topic)
				res.err = &PartitionError{Topic: m.topic, Partition: fp.Partition, Err: err}
				continue
			case err != nil:
				res.err = &PartitionError{Topic: m.topic, Partition: fp.Partition, Err: err}
				return res
			}
			rec, next, err := firstRecord(fp.RecordBatches, pos, fp.AbortedTransactions)
			if err != nil {
				res.err = &PartitionError{Topic: m.topic, Partition: fp.Partition, Err: err}
				return res
			}
			res.next[fp.Partition] = next
			if rec != nil && res.rec == nil {
				rec.Topic, rec.Partition = m.topic, fp.Partition
				res.rec = rec
			}
		}
	}
	return res
}

// hole reads a partition's log bounds after a fetch at pos was out of
// range.
func (m *Member) hole(ctx context.Context, partition int32, pos int64) (Hole, error) {
	offs, err := m.c.ListOffsets(ctx, m.topic, partition)
	if err != nil {
		return Hole{}, err
	}
	return Hole{Topic: m.topic, Partition: partition, Committed: pos, Offsets: offs[partition]}, nil
}

// firstRecord returns the first record at or after offset from in a
// partition's fetched batches, skipping control batches and batches of
// aborted transactions, and the offset to fetch next (past the record, or
// past everything skipped).
func firstRecord(data []byte, from int64, aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction) (*Record, int64, error) {
	sort.Slice(aborted, func(i, j int) bool { return aborted[i].FirstOffset < aborted[j].FirstOffset })
	abortedProducers := make(map[int64]bool)
	next := from
	for {
		b, rest, ok, err := nextBatch(data)
		if err != nil {
			return nil, next, err
		}
		if !ok {
			return nil, next, nil
		}
		data = rest
		// Transactions that aborted and started at or before this batch.
		for len(aborted) > 0 && aborted[0].FirstOffset <= b.lastOffset {
			abortedProducers[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		if b.attrs&attrControl != 0 {
			// An abort marker ends its transaction: the producer's later
			// records are not part of it.
			if abortedProducers[b.producerID] {
				if recs, err := b.records(); err == nil && len(recs) > 0 && controlType(recs[0]) == 0 {
					delete(abortedProducers, b.producerID)
				}
			}
			next = max(next, b.lastOffset+1)
			continue
		}
		if b.lastOffset < from {
			continue
		}
		if b.attrs&attrTransactional != 0 && abortedProducers[b.producerID] {
			next = b.lastOffset + 1
			continue
		}
		recs, err := b.records()
		if err != nil {
			return nil, next, err
		}
		for _, r := range recs {
			if r.Offset >= from {
				return r, r.Offset + 1, nil
			}
		}
		// A batch whose records were all compacted away, or were before from.
		next = b.lastOffset + 1
	}
}
