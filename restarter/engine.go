// Package restarter runs deployments: for each, it is the consumer-group
// member on the deployment's topic and keeps a pool of function processes
// started ahead of time, each waiting for its one message. It is a
// library: `fnctl up` serves it over HTTP, a service can embed it, and
// the tests drive it directly.
//
// Semantics (see the design brief): messages are dispatched to warm
// processes respecting the deployment's Order; each partition commits only
// its contiguous watermark of finished messages, on a timer, on revoke and
// on shutdown; failed attempts (handler error, non-zero exit, crash,
// signal, timeout) are retried with backoff, then dead-lettered; attempt
// counts live in the committed offset's metadata, so they survive a
// restart; a failed dead-letter publish means no commit.
package restarter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/holes"
	"github.com/microfn/microfn/internal/kafka"
)

// Config configures an Engine.
type Config struct {
	// Brokers are the Kafka bootstrap addresses.
	Brokers []string
	// Kafka is how to connect to them (TLS, SASL); nil is plaintext.
	Kafka *kafka.Conn
	// FunctionKafkaEnv is added to the environment of the function
	// processes of a deployment whose Spec.KafkaEnv asks for it. Others get
	// none of the FN_* connection settings: under the restarter a function
	// receives its message over a pipe.
	FunctionKafkaEnv []string
	// LogDir receives one log file per deployment, NAME.log, with the
	// functions' output, one line prefixed per invocation. Empty: discard.
	LogDir string
	// Logger receives the engine's own events; nil discards them.
	Logger *slog.Logger
	// CommitInterval is how long a failed commit waits before it is tried
	// again; default 500ms. A moved watermark is committed at once.
	CommitInterval time.Duration
	// ShutdownTimeout bounds how long Close waits for in-flight messages;
	// default 30s.
	ShutdownTimeout time.Duration
}

// ErrNotFound is returned for an unknown deployment name.
var ErrNotFound = errors.New("no such deployment")

// Status is a deployment's state, as `fnctl ls` shows it.
type Status struct {
	Name  string `json:"name"`
	Topic string `json:"topic"`
	Group string `json:"group"`
	// Pool is the pool's size now: within Spec.MinPool and Spec.MaxPool.
	Pool         int   `json:"pool"`
	Warm         int   `json:"warm"`
	InFlight     int   `json:"inflight"`
	Processed    int64 `json:"processed"`
	Failed       int64 `json:"failed"`
	DeadLettered int64 `json:"dead_lettered"`
	Restarts     int64 `json:"restarts"`
	Lag          int64 `json:"lag"`
	// State is "running", "starting", "paused" (crash loop), "degraded"
	// (a partition's log lost records the group had not processed; it
	// stays so until the deployment is deployed again) or "stopped".
	State string `json:"status"`
	// Reason explains a paused or degraded state, e.g. the last exit and
	// stderr, or the holes.
	Reason string `json:"reason,omitempty"`
	// Holes are the partitions found with a hole, the latest per
	// partition: their committed offset and their log's offsets.
	Holes []holes.Hole `json:"holes,omitempty"`
	// HolesFound counts the holes found since the deployment started.
	HolesFound int64 `json:"holes_found"`
	// Scaled says why the pool's size last changed, at ScaledAt.
	Scaled   string    `json:"scaled,omitempty"`
	ScaledAt time.Time `json:"scaled_at"`
	// ColdStarts counts messages that found the pool at size 0 and
	// waited for a process to start.
	ColdStarts int64 `json:"cold_starts"`
	Spec       Spec  `json:"spec"`
}

// Engine runs deployments.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	client   sarama.Client // the producer's
	producer sarama.SyncProducer
	topics   *kafka.Topics

	mu   sync.Mutex
	deps map[string]*deployment
	stop map[string]context.CancelFunc

	closeOnce sync.Once
	closeErr  error

	// pubMu guards producer against use after Close: a handler still
	// retrying a dead letter when shutdown gives up on it must get an
	// error, not a send on sarama's closed channel.
	pubMu     sync.RWMutex
	pubClosed bool
}

// errClosed is returned by publish after Close.
var errClosed = errors.New("restarter: engine closed")

// New connects to Kafka (for dead letters and emitted events) and returns
// an engine with no deployments.
func New(cfg Config) (*Engine, error) {
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = 500 * time.Millisecond
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("restarter: no brokers")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client, err := cfg.Kafka.NewClient(cfg.Brokers, cfg.Kafka.Config("microfn-restarter"))
	if err != nil {
		return nil, err
	}
	p, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("cannot reach Kafka at %v: %w", cfg.Brokers, err)
	}
	return &Engine{cfg: cfg, log: log, client: client, producer: p, topics: kafka.NewTopics(client, log),
		deps: map[string]*deployment{}, stop: map[string]context.CancelFunc{}}, nil
}

// Deploy starts a deployment, or replaces the one with the same name (the
// old one finishes its in-flight messages and commits first). The spec is
// validated after WithDefaults; a bad spec changes nothing.
func (e *Engine) Deploy(ctx context.Context, s Spec) error {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return err
	}
	if fi, err := os.Stat(s.Binary); err != nil {
		return fmt.Errorf("binary: %w", err)
	} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("binary %s is not an executable file", s.Binary)
	}
	// Build the new deployment first: if that fails, the old one runs on.
	d, err := newDeployment(e, s)
	if err != nil {
		return err
	}
	if err := e.Remove(ctx, s.Name); err != nil && !errors.Is(err, ErrNotFound) {
		d.discard()
		return err
	}
	dctx, cancel := context.WithCancel(context.Background())
	e.mu.Lock()
	e.deps[s.Name] = d
	e.stop[s.Name] = cancel
	e.mu.Unlock()
	go d.run(dctx)
	e.log.Info("deployed", "deployment", s.Name, "topic", s.Topic, "group", s.Group, "min_pool", s.MinPool, "max_pool", s.MaxPool, "order", s.Order)
	return nil
}

// Remove stops a deployment: it stops fetching, lets in-flight messages
// finish, commits and leaves the group.
func (e *Engine) Remove(ctx context.Context, name string) error {
	e.mu.Lock()
	d, ok := e.deps[name]
	cancel := e.stop[name]
	delete(e.deps, name)
	delete(e.stop, name)
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	cancel()
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w", name, ctx.Err())
	}
}

// Scale sets the bounds of a deployment's pool (min = max fixes its
// size); the size moves into them at once.
func (e *Engine) Scale(name string, minPool, maxPool int) error {
	if err := ValidatePool(minPool, maxPool); err != nil {
		return err
	}
	e.mu.Lock()
	d, ok := e.deps[name]
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	d.pool.resize(minPool, maxPool)
	return nil
}

// Status returns every deployment's status, sorted by name.
func (e *Engine) Status() []Status {
	e.mu.Lock()
	deps := make([]*deployment, 0, len(e.deps))
	for _, d := range e.deps {
		deps = append(deps, d)
	}
	e.mu.Unlock()
	out := make([]Status, 0, len(deps))
	for _, d := range deps {
		out = append(out, d.status())
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Close stops every deployment gracefully, bounded by ShutdownTimeout.
// Calling it again returns the first call's result.
func (e *Engine) Close(ctx context.Context) error {
	e.closeOnce.Do(func() { e.closeErr = e.close(ctx) })
	return e.closeErr
}

func (e *Engine) close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ShutdownTimeout)
	defer cancel()
	e.mu.Lock()
	names := make([]string, 0, len(e.deps))
	for n := range e.deps {
		names = append(names, n)
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.Remove(ctx, n)
		}()
	}
	wg.Wait()
	e.pubMu.Lock()
	e.pubClosed = true
	errs = append(errs, e.producer.Close(), e.client.Close())
	e.pubMu.Unlock()
	return errors.Join(errs...)
}

// send publishes records synchronously, as a delivery.SendFunc, creating
// their topics first where they do not exist (dead-letter and event topics
// are microfn's to create when the broker does not auto-create topics).
func (e *Engine) send(_ context.Context, records []delivery.Record) ([]delivery.Record, error) {
	if len(records) == 0 {
		return nil, nil
	}
	e.pubMu.RLock()
	defer e.pubMu.RUnlock()
	if e.pubClosed {
		return nil, errClosed
	}
	topics := make([]string, len(records))
	for i, r := range records {
		topics[i] = r.Topic
	}
	missing := e.topics.Ensure(topics...)
	unsent, err := kafka.Send(e.producer, records)
	if err != nil && missing != nil {
		// Says why better than the produce's "unknown topic".
		err = fmt.Errorf("%w (%v)", err, missing)
	}
	return unsent, err
}
