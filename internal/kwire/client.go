package kwire

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client talks to a Kafka cluster for one short-lived process: it learns
// the cluster from its seed brokers, keeps a few connections per broker
// (one for group requests, one for fetches, one for everything else, so a
// long poll never delays a heartbeat), and retries what the cluster says is
// temporary. A Client is safe for concurrent use.
type Client struct {
	cfg cfg

	mu         sync.Mutex
	closed     bool
	brokers    map[int32]string // node id to host:port; seeds have ids below 0
	conns      map[connKey]*brokerConn
	topics     map[string]*topicInfo
	coords     map[string]int32 // group to coordinator node
	controller int32            // -1 until metadata names it
}

// connRole separates requests that would otherwise wait behind each other
// on one connection.
type connRole uint8

const (
	roleGeneral connRole = iota // metadata, produce, list offsets, create topics
	roleFetch                   // fetch long polls
	roleGroup                   // join, sync, heartbeat, offsets of a group
)

// connKey keys connections by address, so that a seed and the broker
// metadata names at the same address share them.
type connKey struct {
	addr string
	role connRole
}

type topicInfo struct {
	id         [16]byte
	partitions []int32 // leader node per partition; -1 when there is none
}

// NewClient validates the options and returns a client. It connects on
// first use.
func NewClient(opts ...Opt) (*Client, error) {
	c := &Client{
		cfg:     defaultCfg(),
		brokers: make(map[int32]string),
		conns:   make(map[connKey]*brokerConn),
		topics:  make(map[string]*topicInfo),
		coords:  make(map[string]int32),

		controller: -1,
	}
	for _, o := range opts {
		o(&c.cfg)
	}
	if err := c.cfg.validate(); err != nil {
		return nil, err
	}
	if c.cfg.dialer == nil {
		c.cfg.dialer = c.cfg.res.dialTCP
	}
	for i, s := range c.cfg.seeds {
		c.brokers[seedID(i)] = s
	}
	return c, nil
}

func seedID(i int) int32 { return -1 - int32(i) }

// Close closes every connection. Members should be closed first, so that
// they leave their group.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	conns := c.conns
	c.conns = make(map[connKey]*brokerConn)
	c.mu.Unlock()
	for _, bc := range conns {
		bc.close()
	}
	return nil
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// conn returns a connection to node for role, dialling one if needed.
func (c *Client) conn(ctx context.Context, node int32, role connRole) (*brokerConn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	addr, ok := c.brokers[node]
	if !ok {
		c.mu.Unlock()
		return nil, fmt.Errorf("kwire: broker %d is not in the cluster's metadata", node)
	}
	key := connKey{addr, role}
	if bc := c.conns[key]; bc != nil && !bc.dead.Load() {
		c.mu.Unlock()
		return bc, nil
	}
	c.mu.Unlock()
	bc, err := c.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		bc.close()
		return nil, ErrClosed
	}
	if old := c.conns[key]; old != nil && !old.dead.Load() {
		bc.close() // another goroutine dialled meanwhile
		return old, nil
	}
	c.conns[key] = bc
	return bc, nil
}

// dial connects to addr and negotiates, trying again (up to DialAttempts)
// when the broker refuses or drops the connection, as one restarting
// does; other failures (a name that does not resolve, a timeout, a peer
// that is not Kafka, bad credentials) end it at once.
func (c *Client) dial(ctx context.Context, addr string) (*brokerConn, error) {
	var err error
	for attempt := 0; attempt < c.cfg.dialAttempts; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, c.backoff(attempt-1)); err != nil {
				return nil, err
			}
		}
		var bc *brokerConn
		bc, err = c.dialOnce(ctx, addr)
		if err == nil {
			return bc, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !connDropped(err) {
			break
		}
	}
	return nil, err
}

func (c *Client) dialOnce(ctx context.Context, addr string) (*brokerConn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.dialTimeout)
	defer cancel()
	bc, connected, err := c.connect(dctx, addr)
	if err == nil {
		return bc, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	timedOut := dctx.Err() != nil || errors.Is(err, errNoResponse)
	switch {
	case timedOut && connected:
		op := "ApiVersions"
		if be, ok := errors.AsType[*BrokerError](err); ok {
			op = be.Op
		}
		err = &BrokerError{Addr: addr, Op: "dial", Err: fmt.Errorf("connected, but no answer to %s within %v: is it a Kafka broker?", op, c.cfg.dialTimeout)}
	case timedOut:
		err = fmt.Errorf("no connection within %v", c.cfg.dialTimeout)
	}
	var be *BrokerError
	if !errors.As(err, &be) {
		be = &BrokerError{Addr: addr, Op: "dial", Err: err}
	}
	be.dialing = true
	return nil, be
}

// connect opens a connection, negotiates versions and authenticates.
func (c *Client) connect(ctx context.Context, addr string) (_ *brokerConn, connected bool, _ error) {
	conn, err := c.cfg.dialer(ctx, addr)
	if err != nil {
		return nil, false, err
	}
	bc := &brokerConn{
		addr:      addr,
		conn:      conn,
		formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID(c.cfg.clientID)),
		timeout:   c.cfg.requestTimeout,
		caps:      c.cfg.maxVersions,
	}
	if err := bc.handshake(ctx, c.cfg.sasl); err != nil {
		bc.close()
		return nil, true, err
	}
	return bc, true, nil
}

// errConnDropped marks a connection the broker closed or reset.
var errConnDropped = errors.New("connection closed by the broker")

// connDropped reports whether err is a refused, reset or closed connection:
// worth another try on a new connection.
func connDropped(err error) bool {
	return errors.Is(err, errConnDropped) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// retriable reports whether an operation that failed with err may succeed
// if tried again after a backoff.
func retriable(err error) bool {
	if errors.Is(err, ErrUnknownTopic) {
		return false // a topic that does not exist is not coming by itself
	}
	if e, ok := errors.AsType[Error](err); ok {
		return e.Retriable()
	}
	var be *BrokerError
	if errors.As(err, &be) && be.dialing {
		return false // dial already tried DialAttempts times
	}
	return connDropped(err)
}

// backoff is the wait before retry n (from 0): RetryBackoff doubling up to
// one second.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.retryBackoff << min(n, 10)
	return min(d, max(time.Second, c.cfg.retryBackoff))
}

// retry runs op until it succeeds, fails with an error that is not
// retriable, or RetryTimeout has passed.
func (c *Client) retry(ctx context.Context, op func(context.Context) error) error {
	giveUp := time.Now().Add(c.cfg.retryTimeout)
	for n := 0; ; n++ {
		err := op(ctx)
		if err == nil || !retriable(err) || ctx.Err() != nil {
			return err
		}
		wait := c.backoff(n)
		if time.Now().Add(wait).After(giveUp) {
			return fmt.Errorf("%w (retried for %v)", err, c.cfg.retryTimeout)
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// anyConn returns a general connection to some broker: one already open,
// else the seeds in order, else the brokers metadata named.
func (c *Client) anyConn(ctx context.Context) (*brokerConn, error) {
	c.mu.Lock()
	for k, bc := range c.conns {
		if k.role == roleGeneral && !bc.dead.Load() {
			c.mu.Unlock()
			return bc, nil
		}
	}
	var nodes []int32
	for i := range c.cfg.seeds {
		nodes = append(nodes, seedID(i))
	}
	for id := range c.brokers {
		if id >= 0 {
			nodes = append(nodes, id)
		}
	}
	c.mu.Unlock()
	var errs []string
	for _, n := range nodes {
		bc, err := c.conn(ctx, n, roleGeneral)
		if err == nil {
			return bc, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if len(nodes) == 1 {
			return nil, err
		}
		errs = append(errs, strings.TrimPrefix(err.Error(), "kwire: "))
	}
	return nil, fmt.Errorf("kwire: no broker reachable: %s", strings.Join(errs, "; "))
}

// metadata asks for the topics' partitions and leaders (asking the broker
// to create missing ones when create is set, where it auto-creates) and
// caches them. A topic that failed is missing from the result, with its
// error in errs.
func (c *Client) metadata(ctx context.Context, topics []string, create bool) (map[string]*topicInfo, map[string]error, error) {
	bc, err := c.anyConn(ctx)
	if err != nil {
		return nil, nil, err
	}
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = make([]kmsg.MetadataRequestTopic, 0, len(topics)) // not nil: nil asks for every topic
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	req.AllowAutoTopicCreation = create
	resp, err := bc.request(ctx, req, -1, 0)
	if err != nil {
		return nil, nil, err
	}
	r := resp.(*kmsg.MetadataResponse)
	if err := errorCode(r.ErrorCode); err != nil {
		return nil, nil, &BrokerError{Addr: bc.addr, Op: "Metadata", Err: err}
	}
	out := make(map[string]*topicInfo, len(r.Topics))
	errs := make(map[string]error)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range r.Brokers {
		c.brokers[b.NodeID] = joinHostPort(b.Host, b.Port)
	}
	c.controller = r.ControllerID
	for _, t := range r.Topics {
		if t.Topic == nil {
			continue
		}
		if err := errorCode(t.ErrorCode); err != nil {
			errs[*t.Topic] = err
			delete(c.topics, *t.Topic)
			continue
		}
		n := int32(0)
		for _, p := range t.Partitions {
			n = max(n, p.Partition+1)
		}
		ti := &topicInfo{id: t.TopicID, partitions: make([]int32, n)}
		for i := range ti.partitions {
			ti.partitions[i] = -1
		}
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 || Error(p.ErrorCode) == ReplicaNotAvailable {
				ti.partitions[p.Partition] = p.Leader
			}
		}
		c.topics[*t.Topic] = ti
		out[*t.Topic] = ti
	}
	for _, t := range topics {
		if out[t] == nil && errs[t] == nil {
			errs[t] = UnknownTopicOrPartition
		}
	}
	return out, errs, nil
}

// topic returns a topic's cached metadata, asking for it when missing or
// when refresh is set.
func (c *Client) topic(ctx context.Context, topic string, refresh, create bool) (*topicInfo, error) {
	if !refresh {
		c.mu.Lock()
		ti := c.topics[topic]
		c.mu.Unlock()
		if ti != nil {
			return ti, nil
		}
	}
	ts, errs, err := c.metadata(ctx, []string{topic}, create)
	if err != nil {
		return nil, err
	}
	if err := errs[topic]; err != nil {
		if errors.Is(err, UnknownTopicOrPartition) {
			return nil, fmt.Errorf("%w %q (%w)", ErrUnknownTopic, topic, err)
		}
		return nil, fmt.Errorf("kwire: metadata of topic %q: %w", topic, err)
	}
	return ts[topic], nil
}

// forget drops cached metadata after a broker said it is stale.
func (c *Client) forget(topic string) {
	c.mu.Lock()
	delete(c.topics, topic)
	c.mu.Unlock()
}

// leaderConn returns a connection for role to the leader of a partition.
func (c *Client) leaderConn(ctx context.Context, ti *topicInfo, topic string, partition int32, role connRole) (*brokerConn, error) {
	if int(partition) >= len(ti.partitions) || partition < 0 {
		return nil, &PartitionError{Topic: topic, Partition: partition, Err: UnknownTopicOrPartition}
	}
	leader := ti.partitions[partition]
	if leader < 0 {
		return nil, &PartitionError{Topic: topic, Partition: partition, Err: LeaderNotAvailable}
	}
	return c.conn(ctx, leader, role)
}

// coordinator returns a group connection to the group's coordinator.
func (c *Client) coordinator(ctx context.Context, group string) (*brokerConn, error) {
	c.mu.Lock()
	node, ok := c.coords[group]
	c.mu.Unlock()
	if ok {
		return c.conn(ctx, node, roleGroup)
	}
	bc, err := c.anyConn(ctx)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = group
	req.CoordinatorKeys = []string{group}
	resp, err := bc.request(ctx, req, -1, 0)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.FindCoordinatorResponse)
	code, msg, host, port := r.ErrorCode, r.ErrorMessage, r.Host, r.Port
	node = r.NodeID
	if r.Version >= 4 {
		if len(r.Coordinators) != 1 {
			return nil, &BrokerError{Addr: bc.addr, Op: "FindCoordinator", Err: fmt.Errorf("%w: %d coordinators for one group", ErrCorrupt, len(r.Coordinators))}
		}
		co := r.Coordinators[0]
		code, msg, host, port, node = co.ErrorCode, co.ErrorMessage, co.Host, co.Port, co.NodeID
	}
	if err := errorCode(code); err != nil {
		return nil, fmt.Errorf("kwire: find the coordinator of group %q: %w", group, withMessage(err, msg))
	}
	c.mu.Lock()
	c.brokers[node] = joinHostPort(host, port)
	c.coords[group] = node
	c.mu.Unlock()
	return c.conn(ctx, node, roleGroup)
}

// forgetCoordinator drops a group's coordinator after it said it no longer
// is one.
func (c *Client) forgetCoordinator(group string, err error) {
	if errors.Is(err, NotCoordinator) || errors.Is(err, CoordinatorNotAvailable) || connDropped(err) {
		c.mu.Lock()
		delete(c.coords, group)
		c.mu.Unlock()
	}
}

func joinHostPort(host string, port int32) string {
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}
