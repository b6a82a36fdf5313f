package kwire

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Opt configures a Client. Each option's doc comment names the default it
// overrides.
type Opt func(*cfg)

type cfg struct {
	seeds    []string
	clientID string
	dialer   Dialer
	sasl     Mechanism

	dialTimeout    time.Duration
	requestTimeout time.Duration
	dialAttempts   int
	retryBackoff   time.Duration
	retryTimeout   time.Duration

	sessionTimeout    time.Duration
	rebalanceTimeout  time.Duration
	heartbeatInterval time.Duration
	metadataMaxAge    time.Duration

	fetchMaxWait   time.Duration
	fetchMaxBytes  int32
	readCommitted  bool
	produceTimeout time.Duration
	createTopics   bool

	// maxVersions caps the versions the client uses per API key, below its
	// own tested caps; tests use it to exercise older versions.
	maxVersions map[int16]int16
	// res is the name resolver of the default dialer; tests point it at a
	// fake DNS server and hosts file.
	res *resolver
}

func defaultCfg() cfg {
	return cfg{
		seeds:             []string{"127.0.0.1:9092"},
		clientID:          "microfn",
		dialTimeout:       5 * time.Second,
		requestTimeout:    10 * time.Second,
		dialAttempts:      3,
		retryBackoff:      100 * time.Millisecond,
		retryTimeout:      30 * time.Second,
		sessionTimeout:    10 * time.Second,
		rebalanceTimeout:  10 * time.Second,
		heartbeatInterval: time.Second,
		metadataMaxAge:    5 * time.Second,
		fetchMaxWait:      500 * time.Millisecond,
		fetchMaxBytes:     4 << 20,
		produceTimeout:    10 * time.Second,
		createTopics:      true,
		res:               systemResolver(),
	}
}

func (c *cfg) validate() error {
	if len(c.seeds) == 0 {
		return fmt.Errorf("%w: no seed broker", ErrConfig)
	}
	for _, s := range c.seeds {
		if _, _, err := splitHostPort(s); err != nil {
			return fmt.Errorf("%w: seed broker: %v", ErrConfig, err)
		}
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"dial timeout", c.dialTimeout},
		{"request timeout", c.requestTimeout},
		{"retry backoff", c.retryBackoff},
		{"retry timeout", c.retryTimeout},
		{"session timeout", c.sessionTimeout},
		{"rebalance timeout", c.rebalanceTimeout},
		{"heartbeat interval", c.heartbeatInterval},
		{"metadata max age", c.metadataMaxAge},
		{"fetch max wait", c.fetchMaxWait},
		{"produce timeout", c.produceTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return fmt.Errorf("%w: %s must be positive, got %v", ErrConfig, p.name, p.d)
		}
	}
	if c.dialAttempts < 1 {
		return fmt.Errorf("%w: dial attempts must be at least 1, got %d", ErrConfig, c.dialAttempts)
	}
	if c.heartbeatInterval >= c.sessionTimeout {
		return fmt.Errorf("%w: heartbeat interval %v must be shorter than the session timeout %v", ErrConfig, c.heartbeatInterval, c.sessionTimeout)
	}
	if c.fetchMaxBytes < 1 {
		return fmt.Errorf("%w: fetch max bytes must be positive, got %d", ErrConfig, c.fetchMaxBytes)
	}
	return nil
}

// SeedBrokers sets the brokers the client first contacts, as host:port;
// the rest of the cluster is learned from their metadata. Default
// 127.0.0.1:9092.
func SeedBrokers(addrs ...string) Opt {
	return func(c *cfg) { c.seeds = append([]string(nil), addrs...) }
}

// ClientID sets the client id sent with every request, which brokers show
// in their logs and quotas. Default "microfn".
func ClientID(id string) Opt { return func(c *cfg) { c.clientID = id } }

// Conn is a connection to a broker: the part of a net.Conn that kwire
// uses. The default dialer returns an *os.File; a TLS dialer returns a
// *tls.Conn.
type Conn interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
	SetDeadline(t time.Time) error
}

// A Dialer opens a connection to the broker at addr, a host:port from the
// seed list or from a broker's metadata, before ctx is done.
type Dialer func(ctx context.Context, addr string) (Conn, error)

// WithDialer replaces how connections are opened, for example with a TLS
// dialer (which links crypto/tls and net: that is why it is not built
// in). Default: plain TCP through the operating system's sockets, with
// host names resolved from /etc/hosts and the DNS servers of
// /etc/resolv.conf.
func WithDialer(d Dialer) Opt { return func(c *cfg) { c.dialer = d } }

// DialTimeout bounds opening a connection: resolving the name,
// connecting, negotiating versions and authenticating. Default 5s.
func DialTimeout(d time.Duration) Opt { return func(c *cfg) { c.dialTimeout = d } }

// DialAttempts is how many times a broker that refuses or drops
// connections is tried before the operation fails. Default 3, with the
// retry backoff between attempts, so a closed port fails within a second.
func DialAttempts(n int) Opt { return func(c *cfg) { c.dialAttempts = n } }

// RequestTimeout bounds one request's round trip, on top of the time the
// request asks the broker to wait (a fetch's long poll, a join's rebalance
// timeout, a produce's acknowledgement timeout). Default 10s.
func RequestTimeout(d time.Duration) Opt { return func(c *cfg) { c.requestTimeout = d } }

// RetryBackoff is the first wait before retrying; it doubles per retry up
// to one second. Default 100ms.
func RetryBackoff(d time.Duration) Opt { return func(c *cfg) { c.retryBackoff = d } }

// RetryTimeout bounds how long an operation retries errors the cluster
// says are temporary (a leader moving, a coordinator loading, a topic
// being created). Default 30s.
func RetryTimeout(d time.Duration) Opt { return func(c *cfg) { c.retryTimeout = d } }

// SessionTimeout is how long the group coordinator waits for a member's
// heartbeat before removing it. Default 10s.
func SessionTimeout(d time.Duration) Opt { return func(c *cfg) { c.sessionTimeout = d } }

// RebalanceTimeout is how long the coordinator waits for members to
// rejoin during a rebalance. A member that holds a message keeps its
// partitions without rejoining, so a rebalance waits for it at most this
// long. Default 10s.
func RebalanceTimeout(d time.Duration) Opt { return func(c *cfg) { c.rebalanceTimeout = d } }

// HeartbeatInterval is how often a group member heartbeats. Default 1s.
func HeartbeatInterval(d time.Duration) Opt { return func(c *cfg) { c.heartbeatInterval = d } }

// MetadataMaxAge is how often the group leader checks the subscribed
// topic's partition count while it waits for a record, and rebalances
// when it changed. Default 5s.
func MetadataMaxAge(d time.Duration) Opt { return func(c *cfg) { c.metadataMaxAge = d } }

// FetchMaxWait is how long a broker holds a fetch for records to arrive.
// Default 500ms.
func FetchMaxWait(d time.Duration) Opt { return func(c *cfg) { c.fetchMaxWait = d } }

// FetchMaxBytes bounds a fetch response (a first batch larger than it is
// still returned, as Kafka does). Default 4 MiB.
func FetchMaxBytes(n int32) Opt { return func(c *cfg) { c.fetchMaxBytes = n } }

// ReadCommitted makes fetches return only committed transactional
// records, skipping aborted ones. Default: read uncommitted, as the
// restarter's sarama consumer does.
func ReadCommitted() Opt { return func(c *cfg) { c.readCommitted = true } }

// ProduceTimeout is how long a broker waits for all in-sync replicas to
// acknowledge a produce. Default 10s.
func ProduceTimeout(d time.Duration) Opt { return func(c *cfg) { c.produceTimeout = d } }

// NoTopicCreation makes Produce fail with UnknownTopicOrPartition for a
// topic that does not exist. Default: Produce asks the broker to create
// it (auto-creation) and, where that is off, creates it with CreateTopics
// using the broker's default partitions and replication.
func NoTopicCreation() Opt { return func(c *cfg) { c.createTopics = false } }

// WithSASL authenticates every connection with m (see NewMechanism).
// Default: no SASL.
func WithSASL(m Mechanism) Opt { return func(c *cfg) { c.sasl = m } }

// SeedList parses "h1:9092,h2:9092" (spaces and empty items ignored) into
// host:port addresses, for SeedBrokers.
func SeedList(s string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(s, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if _, _, err := splitHostPort(b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("no broker address")
	}
	return out, nil
}
