package broker

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultPartitions is the partition count of topics the embedded broker
// creates on first use.
const DefaultPartitions = 4

// EmbeddedConfig configures the embedded Kafka-protocol broker. The zero
// value listens on 127.0.0.1:9092 and keeps its data in memory.
type EmbeddedConfig struct {
	// Listen is host:port; default 127.0.0.1:9092. Port 0 picks a free port.
	Listen string
	// DataDir keeps topics, records and committed offsets on disk so they
	// survive a restart. Empty means in memory only.
	DataDir string
	// Partitions is the partition count of topics created on first use;
	// default DefaultPartitions.
	Partitions int
	// SyncWrites fsyncs every produced batch (slower, survives power loss).
	SyncWrites bool
}

func (c *EmbeddedConfig) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9092"
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
}

func (c EmbeddedConfig) validate() (host string, port int, err error) {
	h, p, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return "", 0, fmt.Errorf("embedded broker listen address %q: want host:port", c.Listen)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("embedded broker listen address %q: bad port", c.Listen)
	}
	if c.Partitions < 1 {
		return "", 0, fmt.Errorf("embedded broker partitions must be at least 1, got %d", c.Partitions)
	}
	return h, port, nil
}

// Embedded is a Kafka-protocol broker running inside this process
// (franz-go's kfake). Any Kafka client can talk to it.
type Embedded struct {
	cluster *kfake.Cluster
	addr    string
}

// StartEmbedded starts the embedded broker. With a DataDir it reloads the
// topics, records and committed offsets it kept there.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	cfg.setDefaults()
	host, port, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("embedded broker data directory: %w", err)
		}
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ClusterID("microfn"),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on %s: %w", cfg.Listen, err)
	}
	return &Embedded{cluster: c, addr: c.ListenAddrs()[0]}, nil
}

// Addr is the host:port clients connect to.
func (e *Embedded) Addr() string { return e.addr }

// Cluster exposes the underlying kfake cluster, for tests that inject
// faults (for example failing every produce to a dead-letter topic).
func (e *Embedded) Cluster() *kfake.Cluster { return e.cluster }

// Close stops the broker, flushing its data directory.
func (e *Embedded) Close() error {
	e.cluster.Close()
	return nil
}
