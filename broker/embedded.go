package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
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
	// survive a restart, and a kill -9 of the process: every write reaches
	// the operating system before the broker acknowledges it. Empty means
	// in memory only.
	DataDir string
	// Partitions is the partition count of topics created on first use;
	// default DefaultPartitions.
	Partitions int
	// SyncWrites fsyncs every produced batch and every committed offset
	// before acknowledging it, so they survive a power loss too (slower).
	SyncWrites bool
	// Recover loads partition data found in DataDir for a topic the
	// broker has no record of (see UnloadedDataError) by creating the
	// topic again over it. Without it, such data is an error.
	Recover bool
}

func (c *EmbeddedConfig) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9092"
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
}

func (c EmbeddedConfig) validate() error {
	_, p, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("embedded broker listen address %q: want host:port", c.Listen)
	}
	if port, err := strconv.Atoi(p); err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("embedded broker listen address %q: bad port", c.Listen)
	}
	if c.Partitions < 1 {
		return fmt.Errorf("embedded broker partitions must be at least 1, got %d", c.Partitions)
	}
	return nil
}

// Embedded is a Kafka-protocol broker running inside this process
// (franz-go's kfake). Any Kafka client can talk to it.
type Embedded struct {
	cluster    *kfake.Cluster
	addr       string
	partitions int
}

// StartEmbedded starts the embedded broker. With a DataDir it reloads the
// topics, records and committed offsets it kept there; partition data
// there that it cannot load is an *UnloadedDataError (unless
// Recover), and clients are not let in before that check.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("embedded broker data directory: %w", err)
		}
	}
	e, g, err := startCluster(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.DataDir != "" {
		unloaded, err := e.unloaded(cfg.DataDir)
		if err == nil && len(unloaded) > 0 && cfg.Recover && recoverable(unloaded) {
			if e, g, err = e.recover(cfg, unloaded); err != nil {
				return nil, err
			}
			unloaded, err = e.unloaded(cfg.DataDir)
		}
		if err == nil && len(unloaded) > 0 {
			err = &UnloadedDataError{Dir: cfg.DataDir, Partitions: unloaded}
		}
		if err != nil {
			e.Close()
			return nil, err
		}
	}
	e.cluster.ControlKey(int16(kmsg.Metadata), e.autoCreate)
	g.let()
	return e, nil
}

// startCluster starts kfake with clients held back at gate g.
func startCluster(cfg EmbeddedConfig) (*Embedded, *gate, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("start embedded broker on %s: %w", cfg.Listen, err)
	}
	g := newGate(ln)
	// No kfake.AllowAutoTopicCreation: autoCreate does it (see there).
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("microfn"),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.ListenFn(func(string, string) (net.Listener, error) { return g, nil }),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		g.Close()
		return nil, nil, fmt.Errorf("start embedded broker on %s: %w", cfg.Listen, err)
	}
	return &Embedded{cluster: c, addr: ln.Addr().String(), partitions: cfg.Partitions}, g, nil
}

// autoCreate creates the topics a Metadata request names, when it asks
// for auto-creation, through Cluster.CreateTopic, which records the topic
// in the data directory at once.
//
// Upstream behaviour (kfake v0.0.0-20260918054303-01f206a7e32c): with
// kfake.AllowAutoTopicCreation, handleMetadata creates an unknown topic in
// memory only (data.mkt without persistTopicsState), so topics.json lists
// it only after a clean Close. After a kill -9 the broker reloads without
// it, and its acknowledged records, still on disk, are not served. So
// kfake's own auto-creation stays off and this control function does it.
// A control function runs on a goroutine of its own while the cluster
// keeps serving admin calls, so it may call TopicInfo and CreateTopic;
// returning false lets kfake answer the request as usual, with the topic
// now there. When handleMetadata persists what it creates, this can go.
func (e *Embedded) autoCreate(kreq kmsg.Request) (kmsg.Response, error, bool) {
	req := kreq.(*kmsg.MetadataRequest)
	if !req.AllowAutoTopicCreation {
		return nil, nil, false
	}
	for _, rt := range req.Topics {
		if rt.Topic == nil || *rt.Topic == "" || rt.TopicID != [16]byte{} {
			continue // by ID: kfake ignores the name, and an ID names an existing topic
		}
		if e.cluster.TopicInfo(*rt.Topic) == nil {
			// An error (a name colliding with an existing one) leaves
			// kfake to answer that the topic is unknown.
			_ = e.cluster.CreateTopic(*rt.Topic, int32(e.partitions), nil)
		}
	}
	return nil, nil, false
}

// UnloadedPartition is a partition directory holding records the broker
// did not load.
type UnloadedPartition struct {
	Dir       string
	Topic     string
	Partition int32
	// Unrecoverable: the topic was loaded with fewer partitions, or the
	// directory's name is not one the broker writes. Otherwise the broker
	// has no record of the topic at all, and Recover can create it again.
	Unrecoverable bool
}

// UnloadedDataError is returned by StartEmbedded when its data directory
// holds partition data it did not load: serving without it would show a
// topic as empty, or a client writing to it again would mix new records
// into the old files. An earlier microfn could leave such data after a
// crash (the topic was lost, its records were not).
type UnloadedDataError struct {
	Dir        string
	Partitions []UnloadedPartition
}

func (e *UnloadedDataError) Error() string {
	var topics, dirs []string
	for _, p := range e.Partitions {
		if t := strconv.Quote(p.Topic); !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
		dirs = append(dirs, p.Dir)
	}
	if recoverable(e.Partitions) {
		return fmt.Sprintf("embedded broker data directory %s holds records of topic(s) %s that it has no record of "+
			"(lost in a crash of an earlier version): to serve them again, start it once with "+
			"`fnctl broker --data %s --recover`; to drop them, delete %s", e.Dir, strings.Join(topics, ", "), e.Dir, strings.Join(dirs, " "))
	}
	return fmt.Sprintf("embedded broker data directory %s holds records of partitions it did not load "+
		"(topic(s) %s): move %s out of the way to start", e.Dir, strings.Join(topics, ", "), strings.Join(dirs, " "))
}

// unloaded lists the directories under dir/partitions with records of a
// partition the broker did not load.
func (e *Embedded) unloaded(dir string) ([]UnloadedPartition, error) {
	root := filepath.Join(dir, "partitions")
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("embedded broker data directory: %w", err)
	}
	var out []UnloadedPartition
	for _, d := range ents {
		if !d.IsDir() {
			continue
		}
		p := UnloadedPartition{Dir: filepath.Join(root, d.Name()), Partition: -1}
		// kfake names it PathEscape(topic)-partition.
		if i := strings.LastIndexByte(d.Name(), '-'); i > 0 {
			topic, err1 := url.PathUnescape(d.Name()[:i])
			n, err2 := strconv.ParseInt(d.Name()[i+1:], 10, 32)
			if err1 == nil && err2 == nil {
				p.Topic, p.Partition = topic, int32(n)
			}
		}
		if p.Partition >= 0 && e.cluster.PartitionInfo(p.Topic, p.Partition) != nil {
			continue
		}
		if has, err := holdsRecords(p.Dir); err != nil {
			return nil, fmt.Errorf("embedded broker data directory: %w", err)
		} else if !has {
			continue
		}
		p.Unrecoverable = p.Partition < 0 || e.cluster.TopicInfo(p.Topic) != nil
		out = append(out, p)
	}
	return out, nil
}

// holdsRecords says whether a partition directory has a non-empty
// segment file.
func holdsRecords(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, f := range ents {
		if !strings.HasSuffix(f.Name(), ".dat") {
			continue
		}
		if fi, err := f.Info(); err == nil && fi.Size() > 0 {
			return true, nil
		}
	}
	return false, nil
}

func recoverable(unloaded []UnloadedPartition) bool {
	for _, p := range unloaded {
		if p.Unrecoverable {
			return false
		}
	}
	return true
}

// recover creates the topics of unloaded partitions again and restarts
// the broker, which then loads them. It closes e; on error it leaves
// nothing running.
func (e *Embedded) recover(cfg EmbeddedConfig, unloaded []UnloadedPartition) (*Embedded, *gate, error) {
	// Such a topic was created on first use (CreateTopics records its
	// topics at once), so with the default partition count, or more if
	// its directories say so.
	parts := map[string]int32{}
	for _, p := range unloaded {
		parts[p.Topic] = max(parts[p.Topic], p.Partition+1, int32(cfg.Partitions))
	}
	for topic, n := range parts {
		if err := e.cluster.CreateTopic(topic, n, nil); err != nil {
			e.Close()
			return nil, nil, fmt.Errorf("embedded broker: recover topic %q: %w", topic, err)
		}
	}
	e.Close()
	cfg.Listen = e.addr // the same port, even if it was 0
	return startCluster(cfg)
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

// gate is the broker's listener; it holds back client connections until
// let, so that no client reaches a broker whose loaded data is not
// checked yet.
type gate struct {
	net.Listener
	open, closed       chan struct{}
	openOnce, shutOnce sync.Once
}

func newGate(ln net.Listener) *gate {
	return &gate{Listener: ln, open: make(chan struct{}), closed: make(chan struct{})}
}

func (g *gate) let() { g.openOnce.Do(func() { close(g.open) }) }

func (g *gate) Accept() (net.Conn, error) {
	select {
	case <-g.open:
		return g.Listener.Accept()
	case <-g.closed:
		return nil, net.ErrClosed
	}
}

func (g *gate) Close() error {
	g.shutOnce.Do(func() { close(g.closed) })
	return g.Listener.Close()
}
