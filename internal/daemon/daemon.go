// Package daemon is `fnctl up`: it runs the restarter engine, keeps its
// deployments in a state directory so they survive a restart of the
// daemon, runs the embedded Kafka-protocol broker unless pointed at a
// Kafka, and serves the engine over HTTP/JSON. Client is the other side
// of that API, for the fnctl commands.
//
// The state directory holds:
//
//	daemon.lock            locked (flock) while a daemon uses the directory
//	broker/                the embedded broker's data
//	deployments/NAME.json  one restarter.Spec per deployment
//	bin/NAME               the deployed binary, copied in so that rebuilding
//	                       its source changes nothing that runs
//	logs/NAME.log          the functions' output (the engine's LogDir)
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/microfn/microfn/broker"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/restarter"
)

// Defaults of Config.
const (
	DefaultListen       = "127.0.0.1:7077"
	DefaultBrokerListen = "127.0.0.1:9092"
)

// Environment variables the fnctl commands read for the daemon's address
// and token, so a shell can point every command at one daemon.
const (
	EnvServer = "FN_SERVER"
	EnvToken  = "FN_TOKEN"
)

// StateFailed is the Status.State of a saved deployment the engine could
// not take (its binary is gone, its spec file is unreadable, ...); Reason
// says why. The engine's own states are listed at restarter.Status.
const StateFailed = "failed"

// Config configures Run.
type Config struct {
	// StateDir holds everything the daemon keeps (see the package
	// documentation). Required.
	StateDir string
	// Brokers is the Kafka to use, "host:port,..."; empty runs the
	// embedded broker.
	Brokers string
	// Kafka is how to connect to Brokers (TLS, SASL); nil is plaintext.
	// Unused without Brokers: the embedded broker is plaintext on loopback.
	Kafka *kafka.Conn
	// FunctionKafkaEnv is the environment (FN_BROKERS and the connection's
	// FN_* settings) given to the function processes of deployments that
	// ask for it (restarter.Spec.KafkaEnv).
	FunctionKafkaEnv []string
	// BrokerListen is where the embedded broker listens; default
	// DefaultBrokerListen. Unused with Brokers.
	BrokerListen string
	// BrokerSync makes the embedded broker fsync every write before
	// acknowledging it, so that it survives a power loss, not only a crash
	// of the daemon. Unused with Brokers.
	BrokerSync bool
	// Listen is the API's host:port; default DefaultListen. Anything but a
	// loopback address requires Token, since the API runs arbitrary
	// binaries.
	Listen string
	// Token, when set, must come with every API request as
	// "Authorization: Bearer TOKEN".
	Token string
	// Logger receives the daemon's and the engine's events; nil discards
	// them.
	Logger *slog.Logger
	// OnReady, when set, is called once the API accepts requests.
	OnReady func(Ready)

	// newEngine creates the engine; default restarter.New. Tests put a
	// fake engine here.
	newEngine func(restarter.Config) (engine, error)
}

// Ready describes a daemon that has started, for a startup message.
type Ready struct {
	// API is the host:port the API listens on.
	API      string
	Broker   BrokerInfo
	StateDir string
	// Restored counts the saved deployments that were deployed again;
	// Failed names those that could not be (see StateFailed).
	Restored int
	Failed   []string
}

// ConfigError is a Config that Run refuses; it says which setting is wrong.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func configErrorf(format string, args ...any) error {
	return &ConfigError{fmt.Errorf(format, args...)}
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.BrokerListen == "" {
		c.BrokerListen = DefaultBrokerListen
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.newEngine == nil {
		c.newEngine = func(rc restarter.Config) (engine, error) { return restarter.New(rc) }
	}
}

func (c Config) validate() error {
	if c.StateDir == "" {
		return configErrorf("no state directory")
	}
	if c.Brokers != "" {
		if _, err := kafka.ParseBrokers(c.Brokers); err != nil {
			return &ConfigError{err}
		}
	} else if c.Kafka != nil {
		return configErrorf("TLS or SASL settings (%s) need --brokers: the embedded broker is plaintext on loopback", c.Kafka)
	} else if _, _, err := net.SplitHostPort(c.BrokerListen); err != nil {
		return configErrorf("broker listen address %q: want host:port", c.BrokerListen)
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return configErrorf("API listen address %q: want host:port", c.Listen)
	}
	if c.Token == "" && !isLoopback(host) {
		return configErrorf("listening on %s requires --token (or %s)", c.Listen, EnvToken)
	}
	return nil
}

// isLoopback reports whether host only accepts connections from this
// machine. An empty host means every interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// engine is what the daemon needs of the restarter; *restarter.Engine
// implements it, and the tests substitute a fake.
type engine interface {
	Deploy(ctx context.Context, s restarter.Spec) error
	Remove(ctx context.Context, name string) error
	Scale(name string, minPool, maxPool int) error
	Status() []restarter.Status
	Close(ctx context.Context) error
}

var _ engine = (*restarter.Engine)(nil)

// Run runs the daemon until ctx is done: it locks the state directory,
// starts the embedded broker (unless Config.Brokers), starts the engine,
// deploys the saved deployments again and serves the API. When ctx is
// done it stops serving, closes the engine (in-flight messages finish and
// are committed), then the broker.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	st, err := openState(cfg.StateDir)
	if err != nil {
		return err
	}
	defer st.close()
	// Listen before starting anything, so a busy port fails fast.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("API: %w", err)
	}
	d, err := start(ctx, cfg, st)
	if err != nil {
		ln.Close()
		return err
	}
	err = d.serve(ctx, ln)
	return errors.Join(err, d.stop(context.WithoutCancel(ctx)))
}

// daemon is a started daemon: the engine, the broker and the saved
// deployments.
type daemon struct {
	cfg     Config
	log     *slog.Logger
	state   *stateDir
	engine  engine
	broker  *broker.Embedded // nil with an external Kafka
	brokers []string
	started time.Time
	// logPoll is how often `logs -f` looks for appended output.
	logPoll time.Duration

	// opMu serialises deploy, remove, scale and stop, so the files in the
	// state directory always match what the engine runs.
	opMu    sync.Mutex
	stopped bool

	mu       sync.Mutex
	specs    map[string]restarter.Spec // saved deployments
	failed   map[string]string         // saved deployments not running, and why
	restored int                       // saved deployments deployed again at start
}

// start starts the broker and the engine over an opened state directory
// and deploys the saved deployments again.
func start(ctx context.Context, cfg Config, st *stateDir) (*daemon, error) {
	d := &daemon{
		cfg: cfg, log: cfg.Logger, state: st, started: time.Now(), logPoll: 250 * time.Millisecond,
		specs: map[string]restarter.Spec{}, failed: map[string]string{},
	}
	if cfg.Brokers == "" {
		e, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: cfg.BrokerListen, DataDir: st.brokerDir(), SyncWrites: cfg.BrokerSync})
		if err != nil {
			return nil, err
		}
		d.broker, d.brokers = e, []string{e.Addr()}
	} else {
		d.brokers, _ = kafka.ParseBrokers(cfg.Brokers) // validated
	}
	eng, err := cfg.newEngine(restarter.Config{Brokers: d.brokers, Kafka: cfg.Kafka, FunctionKafkaEnv: cfg.FunctionKafkaEnv,
		LogDir: st.logDir(), Logger: d.log})
	if err != nil {
		if d.broker != nil {
			d.broker.Close()
		}
		return nil, fmt.Errorf("start the restarter: %w", err)
	}
	d.engine = eng
	if err := d.restore(ctx); err != nil {
		return nil, errors.Join(err, d.stop(ctx))
	}
	return d, nil
}

// restore deploys the saved deployments again. One that fails is logged
// and listed with StateFailed, so the daemon still serves the others.
func (d *daemon) restore(ctx context.Context) error {
	specs, bad, err := d.state.loadSpecs()
	if err != nil {
		return err
	}
	for name, err := range bad {
		d.log.Error("cannot read a saved deployment", "deployment", name, "err", err)
		d.failed[name] = err.Error()
	}
	for _, s := range specs {
		// The binary is the state directory's copy, wherever the
		// directory has moved since the spec was saved.
		s.Binary = d.state.binPath(s.Name)
		d.specs[s.Name] = s
		if err := d.engine.Deploy(ctx, s); err != nil {
			d.log.Error("cannot deploy a saved deployment", "deployment", s.Name, "err", err)
			d.failed[s.Name] = err.Error()
			continue
		}
		d.restored++
	}
	return nil
}

// ready describes the started daemon; ln is the API's listener.
func (d *daemon) ready(ctx context.Context, ln net.Listener) Ready {
	d.mu.Lock()
	failed := slices.Sorted(maps.Keys(d.failed))
	d.mu.Unlock()
	return Ready{API: ln.Addr().String(), Broker: d.brokerInfo(ctx), StateDir: d.state.root,
		Restored: d.restored, Failed: failed}
}

// serve serves the API on ln until ctx is done or serving fails.
func (d *daemon) serve(ctx context.Context, ln net.Listener) error {
	// Streams (`logs -f`) never go idle, so Shutdown would wait for them
	// until its timeout: their context ends first.
	streams, endStreams := context.WithCancel(context.WithoutCancel(ctx))
	defer endStreams()
	srv := &http.Server{
		Handler:           d.handler(),
		BaseContext:       func(net.Listener) context.Context { return streams },
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	r := d.ready(ctx, ln)
	d.log.Debug("serving the API", "addr", r.API, "state", r.StateDir)
	if d.cfg.OnReady != nil {
		d.cfg.OnReady(r)
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve the API: %w", err)
	case <-ctx.Done():
	}
	d.log.Info("shutting down")
	endStreams()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-served
	if err != nil {
		return fmt.Errorf("stop serving the API: %w", err)
	}
	return nil
}

// stop closes the engine, letting in-flight messages finish, then the
// broker. Requests that arrive later are refused.
func (d *daemon) stop(ctx context.Context) error {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.stopped = true
	var errs []error
	if err := d.engine.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stop the restarter: %w", err))
	}
	if d.broker != nil {
		if err := d.broker.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stop the embedded broker: %w", err))
		}
	}
	return errors.Join(errs...)
}

// BrokerInfo says which Kafka the daemon uses.
type BrokerInfo struct {
	// Kind is "embedded" or "external".
	Kind  string   `json:"kind"`
	Addrs []string `json:"addrs"`
	// Security is how the daemon connects: "plaintext", or TLS and the
	// SASL mechanism and user (never a password).
	Security string `json:"security"`
	// Reachable: at least one address accepted a TCP connection, which is
	// all a Kafka client needs to bootstrap.
	Reachable bool `json:"reachable"`
}

func (d *daemon) brokerInfo(ctx context.Context) BrokerInfo {
	kind := "external"
	if d.broker != nil {
		kind = "embedded"
	}
	return BrokerInfo{Kind: kind, Addrs: d.brokers, Security: d.cfg.Kafka.String(), Reachable: reachable(ctx, d.brokers)}
}

// reachable dials every address at once, each for at most a second.
func reachable(ctx context.Context, addrs []string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	ok := make(chan bool, len(addrs))
	for _, a := range addrs {
		go func() {
			var dialer net.Dialer
			c, err := dialer.DialContext(ctx, "tcp", a)
			if err == nil {
				c.Close()
			}
			ok <- err == nil
		}()
	}
	up := false
	for range addrs {
		up = <-ok || up
	}
	return up
}

// version is the daemon's module version, "devel" when built from a
// working tree.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
