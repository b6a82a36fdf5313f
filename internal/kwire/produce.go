package kwire

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// HashPartition is the partition of a record with a (non-nil) key among n
// partitions, exactly as sarama's NewHashPartitioner, which the rest of
// microfn uses, picks it: the key's 32-bit FNV-1a hash as a signed
// integer, modulo n, made non-negative.
func HashPartition(key []byte, n int32) int32 {
	h := uint32(2166136261)
	for _, b := range key {
		h ^= uint32(b)
		h *= 16777619
	}
	p := int32(h) % n
	if p < 0 {
		p = -p
	}
	return p
}

// maxBatchBytes keeps a produced batch under the broker's default
// message.max.bytes (1 MiB); more records go in further requests.
const maxBatchBytes = 1000 << 10

// Produce writes recs and waits until all in-sync replicas have them
// (acks=all). A record with a key goes to HashPartition's partition; the
// records without one go to one partition picked at random per call. A
// record's Partition is ignored and set, with its Offset, once written;
// records to one partition are written in order. Topics that do not exist
// are created (see NoTopicCreation). Retriable broker errors are retried
// within RetryTimeout, so a record may be written twice if a broker wrote
// it but its acknowledgement was lost. The records of partitions that
// failed are listed in a *ProduceError; the others were written.
func (c *Client) Produce(ctx context.Context, recs ...*Record) error {
	now := time.Now()
	type dest struct {
		topic     string
		partition int32
	}
	pending := make(map[dest][]*Record)
	var order []dest
	perr := &ProduceError{}
	infos := make(map[string]*topicInfo)
	random := make(map[string]int32)
	for _, r := range recs {
		ti, ok := infos[r.Topic]
		if !ok {
			var err error
			if ti, err = c.produceTopic(ctx, r.Topic); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				perr.Partitions = append(perr.Partitions, &PartitionError{Topic: r.Topic, Partition: -1, Err: err})
			}
			infos[r.Topic] = ti
		}
		if ti == nil {
			continue
		}
		n := int32(len(ti.partitions))
		if n == 0 {
			perr.Partitions = append(perr.Partitions, &PartitionError{Topic: r.Topic, Partition: -1, Err: LeaderNotAvailable})
			infos[r.Topic] = nil
			continue
		}
		if r.Key != nil {
			r.Partition = HashPartition(r.Key, n)
		} else {
			if _, ok := random[r.Topic]; !ok {
				random[r.Topic] = rand.Int32N(n)
			}
			r.Partition = random[r.Topic]
		}
		d := dest{r.Topic, r.Partition}
		if pending[d] == nil {
			order = append(order, d)
		}
		pending[d] = append(pending[d], r)
	}

	giveUp := time.Now().Add(c.cfg.retryTimeout)
	for failures := 0; len(pending) > 0; {
		// One request per leader, one batch per partition.
		type part struct {
			d    dest
			recs []*Record
		}
		byLeader := make(map[int32][]part)
		var lastErr error
		for _, d := range order {
			rs := pending[d]
			if rs == nil {
				continue
			}
			ti, err := c.topic(ctx, d.topic, false, false)
			if err != nil {
				lastErr = err
				continue
			}
			infos[d.topic] = ti
			leader := int32(-1)
			if int(d.partition) < len(ti.partitions) {
				leader = ti.partitions[d.partition]
			}
			if leader < 0 {
				c.forget(d.topic)
				lastErr = &PartitionError{Topic: d.topic, Partition: d.partition, Err: LeaderNotAvailable}
				continue
			}
			size, n := 0, 0
			for n < len(rs) && (n == 0 || size+recordSize(rs[n]) <= maxBatchBytes) {
				size += recordSize(rs[n])
				n++
			}
			byLeader[leader] = append(byLeader[leader], part{d, rs[:n]})
		}
		progressed := false
		for leader, parts := range byLeader {
			req := kmsg.NewPtrProduceRequest()
			req.Acks = -1
			req.TimeoutMillis = int32(c.cfg.produceTimeout.Milliseconds())
			limit := int16(-1)
			idx := make(map[string]int)
			for _, p := range parts {
				ti := infos[p.d.topic]
				if ti.id == [16]byte{} {
					limit = produceTopicIDVersion - 1
				}
				i, ok := idx[p.d.topic]
				if !ok {
					i = len(req.Topics)
					idx[p.d.topic] = i
					req.Topics = append(req.Topics, kmsg.ProduceRequestTopic{Topic: p.d.topic, TopicID: ti.id})
				}
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Partition = p.d.partition
				rp.Records = appendBatch(nil, p.recs, now)
				req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
			}
			resp, err := c.sendProduce(ctx, leader, req, limit)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if retriable(err) {
					lastErr = err
					continue
				}
				for _, p := range parts {
					perr.Partitions = append(perr.Partitions, &PartitionError{Topic: p.d.topic, Partition: p.d.partition, Err: err})
					delete(pending, p.d)
				}
				continue
			}
			results := make(map[dest]kmsg.ProduceResponseTopicPartition)
			for _, t := range resp.Topics {
				name := t.Topic
				if resp.Version >= produceTopicIDVersion {
					for topic, ti := range infos {
						if ti != nil && ti.id == t.TopicID {
							name = topic
						}
					}
				}
				for _, p := range t.Partitions {
					results[dest{name, p.Partition}] = p
				}
			}
			for _, p := range parts {
				res, ok := results[p.d]
				var err error
				if !ok {
					err = fmt.Errorf("%w: no result in the Produce response", ErrCorrupt)
				} else {
					err = withMessage(errorCode(res.ErrorCode), res.ErrorMessage)
				}
				switch {
				case err == nil:
					for i, r := range p.recs {
						r.Offset = res.BaseOffset + int64(i)
					}
					pending[p.d] = pending[p.d][len(p.recs):]
					if len(pending[p.d]) == 0 {
						delete(pending, p.d)
					}
					progressed = true
				case retriable(err):
					c.forget(p.d.topic)
					lastErr = &PartitionError{Topic: p.d.topic, Partition: p.d.partition, Err: err}
				default:
					perr.Partitions = append(perr.Partitions, &PartitionError{Topic: p.d.topic, Partition: p.d.partition, Err: err})
					delete(pending, p.d)
				}
			}
		}
		if len(pending) == 0 || progressed {
			continue
		}
		wait := c.backoff(failures)
		failures++
		if time.Now().Add(wait).After(giveUp) {
			for _, d := range order {
				if pending[d] != nil {
					perr.Partitions = append(perr.Partitions, &PartitionError{Topic: d.topic, Partition: d.partition,
						Err: fmt.Errorf("%w (retried for %v)", lastErr, c.cfg.retryTimeout)})
				}
			}
			break
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
	if len(perr.Partitions) > 0 {
		return perr
	}
	return nil
}

func (c *Client) sendProduce(ctx context.Context, leader int32, req *kmsg.ProduceRequest, limit int16) (*kmsg.ProduceResponse, error) {
	bc, err := c.conn(ctx, leader, roleGeneral)
	if err != nil {
		return nil, err
	}
	resp, err := bc.request(ctx, req, limit, c.cfg.produceTimeout)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.ProduceResponse), nil
}

// recordSize approximates a record's encoded size.
func recordSize(r *Record) int {
	n := 32 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// produceTopic returns a topic's metadata, creating the topic when it does
// not exist and creation is allowed.
func (c *Client) produceTopic(ctx context.Context, topic string) (*topicInfo, error) {
	created := false
	var ti *topicInfo
	err := c.retry(ctx, func(ctx context.Context) error {
		var err error
		ti, err = c.topic(ctx, topic, false, c.cfg.createTopics)
		if !errors.Is(err, ErrUnknownTopic) || !c.cfg.createTopics {
			return err
		}
		if !created {
			// The broker does not create topics on first use.
			if err := c.CreateTopics(ctx, topic); err != nil {
				return err
			}
			created = true
		}
		return LeaderNotAvailable // until metadata shows the new topic
	})
	return ti, err
}

// CreateTopics creates topics with the broker's default partition count
// and replication factor. A topic that exists already is not an error.
func (c *Client) CreateTopics(ctx context.Context, topics ...string) error {
	return c.retry(ctx, func(ctx context.Context) error {
		bc, err := c.controllerConn(ctx)
		if err != nil {
			return err
		}
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = int32(c.cfg.requestTimeout.Milliseconds())
		for _, t := range topics {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic = t
			rt.NumPartitions = -1
			rt.ReplicationFactor = -1
			req.Topics = append(req.Topics, rt)
		}
		resp, err := bc.request(ctx, req, -1, c.cfg.requestTimeout)
		if err != nil {
			return err
		}
		for _, t := range resp.(*kmsg.CreateTopicsResponse).Topics {
			err := errorCode(t.ErrorCode)
			switch {
			case err == nil, errors.Is(err, TopicAlreadyExists):
			case errors.Is(err, NotController):
				c.mu.Lock()
				c.controller = -1
				c.mu.Unlock()
				return err
			default:
				return fmt.Errorf("kwire: create topic %q: %w", t.Topic, withMessage(err, t.ErrorMessage))
			}
		}
		return nil
	})
}

// controllerConn returns a general connection to the broker metadata
// names as the controller (in KRaft, any broker, which forwards).
func (c *Client) controllerConn(ctx context.Context) (*brokerConn, error) {
	c.mu.Lock()
	node := c.controller
	c.mu.Unlock()
	if node < 0 {
		if _, _, err := c.metadata(ctx, nil, false); err != nil {
			return nil, err
		}
		c.mu.Lock()
		node = c.controller
		c.mu.Unlock()
	}
	if node < 0 {
		return c.anyConn(ctx)
	}
	return c.conn(ctx, node, roleGeneral)
}
