package kwire

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Offsets are the bounds of a partition's log: Start is the first offset
// it still holds, End the offset the next record will get (the high
// watermark; with ReadCommitted, the last stable offset). A committed
// offset outside [Start, End] is a hole: records were lost or the topic
// was re-created.
type Offsets struct {
	Start, End int64
}

// Committed is a group's committed position in a partition: the next
// offset to consume (-1 when the group never committed one) and the
// metadata string kept with it.
type Committed struct {
	Offset   int64
	Metadata string
}

// ListOffsets returns the log bounds of the topic's partitions (all of
// them when none are named).
func (c *Client) ListOffsets(ctx context.Context, topic string, partitions ...int32) (map[int32]Offsets, error) {
	out := make(map[int32]Offsets)
	err := c.retry(ctx, func(ctx context.Context) error {
		ti, err := c.topic(ctx, topic, false, false)
		if err != nil {
			return err
		}
		ps := partitions
		if len(ps) == 0 {
			for p := range ti.partitions {
				ps = append(ps, int32(p))
			}
		}
		byLeader := make(map[int32][]int32)
		for _, p := range ps {
			if _, done := out[p]; done {
				continue
			}
			if int(p) >= len(ti.partitions) || p < 0 {
				return &PartitionError{Topic: topic, Partition: p, Err: UnknownTopicOrPartition}
			}
			byLeader[ti.partitions[p]] = append(byLeader[ti.partitions[p]], p)
		}
		for leader, ps := range byLeader {
			if leader < 0 {
				c.forget(topic)
				return &PartitionError{Topic: topic, Partition: ps[0], Err: LeaderNotAvailable}
			}
			bc, err := c.conn(ctx, leader, roleGeneral)
			if err != nil {
				return err
			}
			start, err := c.listOffsets(ctx, bc, topic, ps, -2)
			if err != nil {
				return err
			}
			end, err := c.listOffsets(ctx, bc, topic, ps, -1)
			if err != nil {
				return err
			}
			for _, p := range ps {
				out[p] = Offsets{Start: start[p], End: end[p]}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// listOffsets asks one leader for the offsets at timestamp -2 (the log
// start) or -1 (the end).
func (c *Client) listOffsets(ctx context.Context, bc *brokerConn, topic string, partitions []int32, ts int64) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	if c.cfg.readCommitted {
		req.IsolationLevel = 1
	}
	req.TimeoutMillis = int32(c.cfg.requestTimeout.Milliseconds())
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = ts
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := bc.request(ctx, req, -1, 0)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64, len(partitions))
	for _, t := range resp.(*kmsg.ListOffsetsResponse).Topics {
		for _, p := range t.Partitions {
			if err := errorCode(p.ErrorCode); err != nil {
				if Error(p.ErrorCode).Retriable() {
					c.forget(topic)
				}
				return nil, &PartitionError{Topic: topic, Partition: p.Partition, Err: err}
			}
			out[p.Partition] = p.Offset
		}
	}
	for _, p := range partitions {
		if _, ok := out[p]; !ok {
			return nil, &PartitionError{Topic: topic, Partition: p, Err: fmt.Errorf("%w: no offset in the ListOffsets response", ErrCorrupt)}
		}
	}
	return out, nil
}

// FetchCommitted returns the group's committed offsets and metadata for
// the topic's partitions.
func (c *Client) FetchCommitted(ctx context.Context, group, topic string, partitions ...int32) (map[int32]Committed, error) {
	var out map[int32]Committed
	err := c.retry(ctx, func(ctx context.Context) error {
		var err error
		out, err = c.fetchCommitted(ctx, group, topic, partitions)
		c.forgetCoordinator(group, err)
		return err
	})
	return out, err
}

func (c *Client) fetchCommitted(ctx context.Context, group, topic string, partitions []int32) (map[int32]Committed, error) {
	bc, err := c.coordinator(ctx, group)
	if err != nil {
		return nil, err
	}
	ti, limit, err := c.topicIDFor(ctx, offsetFetchTopicIDVersion, topic)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: partitions}}
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, TopicID: ti.id, Partitions: partitions}}
	req.Groups = []kmsg.OffsetFetchRequestGroup{rg}
	resp, err := bc.request(ctx, req, limit, 0)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.OffsetFetchResponse)
	out := make(map[int32]Committed, len(partitions))
	for _, p := range partitions {
		out[p] = Committed{Offset: -1}
	}
	set := func(p int32, offset int64, meta *string, code int16) error {
		if err := errorCode(code); err != nil {
			return &PartitionError{Topic: topic, Partition: p, Err: err}
		}
		cm := Committed{Offset: offset}
		if meta != nil {
			cm.Metadata = *meta
		}
		out[p] = cm
		return nil
	}
	groupErr := func(code int16) error {
		if Error(code) == GroupIDNotFound {
			return nil // a group that never committed
		}
		if err := errorCode(code); err != nil {
			return fmt.Errorf("kwire: committed offsets of group %q: %w", group, err)
		}
		return nil
	}
	if r.Version >= 8 {
		for _, g := range r.Groups {
			if err := groupErr(g.ErrorCode); err != nil {
				return nil, err
			}
			for _, t := range g.Topics {
				if t.Topic != topic && (r.Version < offsetFetchTopicIDVersion || t.TopicID != ti.id) {
					continue
				}
				for _, p := range t.Partitions {
					if err := set(p.Partition, p.Offset, p.Metadata, p.ErrorCode); err != nil {
						return nil, err
					}
				}
			}
		}
		return out, nil
	}
	if err := groupErr(r.ErrorCode); err != nil {
		return nil, err
	}
	for _, t := range r.Topics {
		if t.Topic != topic {
			continue
		}
		for _, p := range t.Partitions {
			if err := set(p.Partition, p.Offset, p.Metadata, p.ErrorCode); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// topicIDFor returns the topic's metadata and the highest version usable
// for a request that names topics by id from idVersion on: a topic whose
// id the cluster did not tell (metadata before v10) caps it below.
func (c *Client) topicIDFor(ctx context.Context, idVersion int16, topic string) (*topicInfo, int16, error) {
	ti, err := c.topic(ctx, topic, false, false)
	if err != nil {
		return nil, 0, err
	}
	if ti.id == [16]byte{} {
		return ti, idVersion - 1, nil
	}
	return ti, -1, nil
}

// commit commits offsets as member memberID of generation.
func (c *Client) commit(ctx context.Context, group string, generation int32, memberID, topic string, partition int32, offset int64, metadata string) error {
	bc, err := c.coordinator(ctx, group)
	if err != nil {
		return err
	}
	ti, limit, err := c.topicIDFor(ctx, offsetCommitTopicIDVersion, topic)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = group
	req.Generation = generation
	req.MemberID = memberID
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition = partition
	rp.Offset = offset
	rp.Metadata = kmsg.StringPtr(metadata)
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, TopicID: ti.id, Partitions: []kmsg.OffsetCommitRequestTopicPartition{rp}}}
	resp, err := bc.request(ctx, req, limit, 0)
	if err != nil {
		return err
	}
	for _, t := range resp.(*kmsg.OffsetCommitResponse).Topics {
		for _, p := range t.Partitions {
			if p.Partition != partition {
				continue
			}
			err := errorCode(p.ErrorCode)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, IllegalGeneration), errors.Is(err, UnknownMemberID),
				errors.Is(err, RebalanceInProgress), errors.Is(err, FencedInstanceID):
				return &PartitionError{Topic: topic, Partition: partition, Err: fmt.Errorf("%w: %w", ErrNotMember, err)}
			}
			return &PartitionError{Topic: topic, Partition: partition, Err: err}
		}
	}
	return &PartitionError{Topic: topic, Partition: partition, Err: fmt.Errorf("%w: no result in the OffsetCommit response", ErrCorrupt)}
}
