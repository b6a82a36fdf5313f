package kwire

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The classic group protocol's names for a consumer with the range
// assignor: what sarama's consumer group with NewBalanceStrategyRange, and
// Kafka's Java consumer with RangeAssignor, send, so they share groups.
const (
	protocolType = "consumer"
	assignorName = "range"
)

// Member is a one-shot member of a consumer group subscribed to one topic
// (the classic group protocol, range assignor). Take waits for the first
// record of its partitions, rejoining as the group rebalances; once a
// record is taken the member stops following rebalances and only
// heartbeats, keeping its partitions (a rebalance waits for it up to
// RebalanceTimeout) until it commits and closes.
type Member struct {
	c            *Client
	group, topic string

	mu         sync.Mutex
	memberID   string
	generation int32
	leader     bool
	assigned   []int32
	committed  map[int32]Committed
	holes      []Hole
	partitions int // the topic's partition count when assigned (leader only)

	lost   error       // the coordinator no longer counts this member
	rejoin atomic.Bool // a heartbeat saw the group rebalance
	taken  atomic.Bool
	hbStop chan struct{}
	hbDone chan struct{}
	closed bool
}

// Hole is a committed offset outside its partition's log, found by Take,
// which then started the partition at the log's start.
type Hole struct {
	Topic     string
	Partition int32
	Committed int64
	Offsets
}

// Join joins group as a consumer of topic and waits until the group has
// assigned partitions (perhaps none: then Take waits for a rebalance that
// gives it some). Close the member to leave the group.
func (c *Client) Join(ctx context.Context, group, topic string) (*Member, error) {
	if group == "" || topic == "" {
		return nil, fmt.Errorf("%w: Join needs a group and a topic", ErrConfig)
	}
	// Fail at once for a topic that does not exist and that the broker does
	// not create, rather than wait in the group for partitions.
	if err := c.retry(ctx, func(ctx context.Context) error {
		_, err := c.topic(ctx, topic, true, true)
		return err
	}); err != nil {
		return nil, err
	}
	m := &Member{c: c, group: group, topic: topic}
	if err := m.join(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// MemberID is the id the coordinator gave this member.
func (m *Member) MemberID() string { m.mu.Lock(); defer m.mu.Unlock(); return m.memberID }

// Generation is the group generation the member belongs to.
func (m *Member) Generation() int32 { m.mu.Lock(); defer m.mu.Unlock(); return m.generation }

// Assigned lists the partitions of the topic assigned to this member.
func (m *Member) Assigned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.assigned)
}

// Committed returns the group's committed offset and metadata of an
// assigned partition, as read when the partition was assigned.
func (m *Member) Committed(partition int32) (Committed, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cm, ok := m.committed[partition]
	return cm, ok
}

// Holes lists the holes Take found.
func (m *Member) Holes() []Hole {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.holes)
}

// join runs JoinGroup and SyncGroup until the member is in a stable
// generation, reads the committed offsets of its partitions, and starts
// heartbeating.
func (m *Member) join(ctx context.Context) error {
	m.stopHeartbeat()
	m.rejoin.Store(false)
	err := m.c.retry(ctx, func(ctx context.Context) error {
		err := m.joinOnce(ctx)
		m.c.forgetCoordinator(m.group, err)
		return err
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	assigned := slices.Clone(m.assigned)
	m.mu.Unlock()
	committed := map[int32]Committed{}
	if len(assigned) > 0 {
		if committed, err = m.c.FetchCommitted(ctx, m.group, m.topic, assigned...); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed // closed while joining: no heartbeats
	}
	m.committed = committed
	m.lost = nil
	m.startHeartbeat()
	return nil
}

// joinOnce is one JoinGroup (twice when the coordinator first hands out a
// member id) and SyncGroup. A rebalance that starts meanwhile joins again,
// a bounded number of times.
func (m *Member) joinOnce(ctx context.Context) error {
	var again error
	for range maxRejoins {
		bc, err := m.c.coordinator(ctx, m.group)
		if err != nil {
			return err
		}
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = []string{m.topic}
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group = m.group
		req.SessionTimeoutMillis = int32(m.c.cfg.sessionTimeout.Milliseconds())
		req.RebalanceTimeoutMillis = int32(m.c.cfg.rebalanceTimeout.Milliseconds())
		req.MemberID = m.MemberID()
		req.ProtocolType = protocolType
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: assignorName, Metadata: meta.AppendTo(nil)}}
		resp, err := bc.request(ctx, req, -1, m.c.cfg.rebalanceTimeout)
		if err != nil {
			return err
		}
		jr := resp.(*kmsg.JoinGroupResponse)
		switch err := errorCode(jr.ErrorCode); {
		case errors.Is(err, MemberIDRequired):
			m.setMember(jr.MemberID)
			again = err
			continue
		case errors.Is(err, UnknownMemberID):
			m.setMember("")
			again = err
			continue
		case errors.Is(err, RebalanceInProgress):
			again = err
			continue
		case errors.Is(err, InconsistentGroupProtocol):
			return fmt.Errorf("kwire: join group %q: %w: its members use another protocol or assignor than %q/%q", m.group, err, protocolType, assignorName)
		case err != nil:
			return fmt.Errorf("kwire: join group %q: %w", m.group, err)
		}
		if jr.Protocol != nil && *jr.Protocol != assignorName {
			return fmt.Errorf("kwire: join group %q: the group chose assignor %q, kwire implements only %q", m.group, *jr.Protocol, assignorName)
		}
		leader := jr.LeaderID == jr.MemberID
		m.mu.Lock()
		m.memberID = jr.MemberID
		m.generation = jr.Generation
		m.leader = leader
		m.mu.Unlock()

		var plan []kmsg.SyncGroupRequestGroupAssignment
		if leader && !jr.SkipAssignment {
			if plan, err = m.assign(ctx, jr.Members); err != nil {
				return err
			}
		}
		sreq := kmsg.NewPtrSyncGroupRequest()
		sreq.Group = m.group
		sreq.Generation = jr.Generation
		sreq.MemberID = jr.MemberID
		sreq.ProtocolType = kmsg.StringPtr(protocolType)
		sreq.Protocol = kmsg.StringPtr(assignorName)
		sreq.GroupAssignment = plan
		resp, err = bc.request(ctx, sreq, -1, m.c.cfg.rebalanceTimeout)
		if err != nil {
			return err
		}
		sr := resp.(*kmsg.SyncGroupResponse)
		switch err := errorCode(sr.ErrorCode); {
		case errors.Is(err, RebalanceInProgress), errors.Is(err, IllegalGeneration):
			again = err
			continue
		case errors.Is(err, UnknownMemberID):
			m.setMember("")
			again = err
			continue
		case err != nil:
			return fmt.Errorf("kwire: sync group %q: %w", m.group, err)
		}
		var assigned []int32
		if len(sr.MemberAssignment) > 0 {
			var a kmsg.ConsumerMemberAssignment
			if err := a.ReadFrom(sr.MemberAssignment); err != nil {
				return fmt.Errorf("%w: group %q assignment: %v", ErrCorrupt, m.group, err)
			}
			for _, t := range a.Topics {
				if t.Topic == m.topic {
					assigned = append(assigned, t.Partitions...)
				}
			}
		}
		slices.Sort(assigned)
		m.mu.Lock()
		m.assigned = slices.Compact(assigned)
		m.mu.Unlock()
		return nil
	}
	return fmt.Errorf("kwire: join group %q: rebalancing still after %d joins: %w", m.group, maxRejoins, again)
}

// maxRejoins bounds the joins of one joinOnce: a group whose members keep
// coming and going may never settle.
const maxRejoins = 20

func (m *Member) setMember(id string) {
	m.mu.Lock()
	m.memberID = id
	m.mu.Unlock()
}

// assign computes the leader's range assignment of every topic the members
// subscribe to.
func (m *Member) assign(ctx context.Context, members []kmsg.JoinGroupResponseMember) ([]kmsg.SyncGroupRequestGroupAssignment, error) {
	subs := make(map[string][]string) // member id to topics
	topicSet := make(map[string]bool)
	for _, mem := range members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(mem.ProtocolMetadata); err != nil {
			return nil, fmt.Errorf("%w: subscription of group %q member %q: %v", ErrCorrupt, m.group, mem.MemberID, err)
		}
		subs[mem.MemberID] = meta.Topics
		for _, t := range meta.Topics {
			topicSet[t] = true
		}
	}
	topics := make([]string, 0, len(topicSet))
	for t := range topicSet {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	infos, errs, err := m.c.metadata(ctx, topics, true)
	if err != nil {
		return nil, err
	}
	if err := errs[m.topic]; err != nil && !errors.Is(err, UnknownTopicOrPartition) {
		return nil, err // retriable ones (a new topic's leader) are retried
	}
	counts := make(map[string]int32, len(infos))
	for t, ti := range infos {
		counts[t] = int32(len(ti.partitions))
	}
	m.mu.Lock()
	m.partitions = int(counts[m.topic])
	m.mu.Unlock()
	plan := RangeAssign(subs, counts)
	out := make([]kmsg.SyncGroupRequestGroupAssignment, 0, len(members))
	for _, mem := range members {
		a := kmsg.NewConsumerMemberAssignment()
		byTopic := plan[mem.MemberID]
		ts := make([]string, 0, len(byTopic))
		for t := range byTopic {
			ts = append(ts, t)
		}
		sort.Strings(ts)
		for _, t := range ts {
			a.Topics = append(a.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: t, Partitions: byTopic[t]})
		}
		out = append(out, kmsg.SyncGroupRequestGroupAssignment{MemberID: mem.MemberID, MemberAssignment: a.AppendTo(nil)})
	}
	return out, nil
}

// RangeAssign is Kafka's range assignment, as sarama's
// NewBalanceStrategyRange computes it: per topic, the members subscribed
// to it in member id order each get a contiguous range of partitions, the
// first (partitions mod members) of them one more than the rest. subs maps
// member ids to their topics, partitions topics to partition counts
// (topics missing from it are not assigned). The result maps member ids
// to topics to partitions.
func RangeAssign(subs map[string][]string, partitions map[string]int32) map[string]map[string][]int32 {
	byTopic := make(map[string][]string)
	for member, topics := range subs {
		for _, t := range topics {
			if !slices.Contains(byTopic[t], member) {
				byTopic[t] = append(byTopic[t], member)
			}
		}
	}
	plan := make(map[string]map[string][]int32, len(subs))
	for t, members := range byTopic {
		n := int(partitions[t])
		if n == 0 {
			continue
		}
		sort.Strings(members)
		per, extra := n/len(members), n%len(members)
		for i, member := range members {
			start := i*per + min(i, extra)
			count := per
			if i < extra {
				count++
			}
			if count == 0 {
				continue
			}
			ps := make([]int32, count)
			for j := range ps {
				ps[j] = int32(start + j)
			}
			if plan[member] == nil {
				plan[member] = make(map[string][]int32)
			}
			plan[member][t] = ps
		}
	}
	return plan
}

// startHeartbeat heartbeats every HeartbeatInterval until stopped. A
// rebalance sets rejoin; an expired membership sets lost. m.mu is held.
func (m *Member) startHeartbeat() {
	stop, done := make(chan struct{}), make(chan struct{})
	m.hbStop, m.hbDone = stop, done
	gen, id := m.generation, m.memberID
	go func() {
		defer close(done)
		t := time.NewTicker(m.c.cfg.heartbeatInterval)
		defer t.Stop()
		lastOK := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), m.c.cfg.heartbeatInterval+m.c.cfg.requestTimeout)
			go func() {
				select {
				case <-stop:
					cancel()
				case <-ctx.Done():
				}
			}()
			err := m.heartbeat(ctx, gen, id)
			cancel()
			switch {
			case err == nil:
				lastOK = time.Now()
			case errors.Is(err, RebalanceInProgress):
				// Still a member until the rebalance completes: the
				// coordinator counts the heartbeat.
				lastOK = time.Now()
				m.rejoin.Store(true)
			case errors.Is(err, UnknownMemberID), errors.Is(err, IllegalGeneration), errors.Is(err, FencedInstanceID):
				m.setLost(fmt.Errorf("%w: heartbeat: %w", ErrNotMember, err))
				return
			default:
				m.c.forgetCoordinator(m.group, err)
				if time.Since(lastOK) > m.c.cfg.sessionTimeout {
					m.setLost(fmt.Errorf("%w: no heartbeat answered for the session timeout: %w", ErrNotMember, err))
					return
				}
			}
		}
	}()
}

func (m *Member) heartbeat(ctx context.Context, gen int32, id string) error {
	bc, err := m.c.coordinator(ctx, m.group)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group = m.group
	req.Generation = gen
	req.MemberID = id
	resp, err := bc.request(ctx, req, -1, 0)
	if err != nil {
		return err
	}
	return errorCode(resp.(*kmsg.HeartbeatResponse).ErrorCode)
}

func (m *Member) stopHeartbeat() {
	m.mu.Lock()
	stop, done := m.hbStop, m.hbDone
	m.hbStop, m.hbDone = nil, nil
	m.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (m *Member) setLost(err error) {
	m.mu.Lock()
	m.lost = err
	m.mu.Unlock()
	m.rejoin.Store(true)
}

// Commit commits offset (the next offset to consume: a taken record's
// Offset+1, or its own Offset to consume it again) with metadata for an
// assigned partition, as this member of its generation: a member that
// lost the partition in a rebalance is refused with ErrNotMember.
func (m *Member) Commit(ctx context.Context, partition int32, offset int64, metadata string) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	gen, id, lost := m.generation, m.memberID, m.lost
	m.mu.Unlock()
	if lost != nil {
		return lost
	}
	return m.c.retry(ctx, func(ctx context.Context) error {
		err := m.c.commit(ctx, m.group, gen, id, m.topic, partition, offset, metadata)
		m.c.forgetCoordinator(m.group, err)
		return err
	})
}

// Close leaves the group, so that its partitions go to other members at
// once rather than after the session timeout. A Take in progress returns
// ErrClosed after its current fetch (at most FetchMaxWait).
func (m *Member) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.stopHeartbeat()
	bc, err := m.c.coordinator(ctx, m.group)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = m.group
	id := m.MemberID()
	req.MemberID = id
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = id
	lm.Reason = kmsg.StringPtr("one-shot member done")
	req.Members = []kmsg.LeaveGroupRequestMember{lm}
	resp, err := bc.request(ctx, req, -1, 0)
	if err != nil {
		return err
	}
	r := resp.(*kmsg.LeaveGroupResponse)
	err = errorCode(r.ErrorCode)
	for _, lm := range r.Members {
		if err == nil {
			err = errorCode(lm.ErrorCode)
		}
	}
	if err != nil && !errors.Is(err, UnknownMemberID) {
		return fmt.Errorf("kwire: leave group %q: %w", m.group, err)
	}
	return nil
}
