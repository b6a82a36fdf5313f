package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/kconn"
	"github.com/microfn/microfn/internal/ktls"
	"github.com/microfn/microfn/internal/scram"
)

// Conn is how every microfn Kafka client connects: TLS when TLS is set,
// SASL when Mechanism is. A nil *Conn is plaintext.
type Conn struct {
	TLS       *tls.Config
	Mechanism string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	User      string
	Password  string
}

// Load reads the files s names (CA bundle, client certificate and key,
// password) and returns the connection they describe; nil for plaintext.
// An insecure-skip-verify setting is logged to log, loudly, every time.
func Load(s kconn.Settings, getenv func(string) string, log *slog.Logger) (*Conn, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if !s.Secured() {
		return nil, nil
	}
	c := &Conn{Mechanism: s.SASLMechanism, User: s.SASLUser}
	if s.TLS {
		cfg, err := ktls.Config(s)
		if err != nil {
			return nil, err
		}
		if s.InsecureSkipVerify && log != nil {
			log.Warn(kconn.InsecureWarning)
		}
		c.TLS = cfg
	}
	if s.SASLMechanism != "" {
		p, err := s.Password(getenv)
		if err != nil {
			return nil, err
		}
		c.Password = p
	}
	return c, nil
}

// Config is the package's Config with c's TLS and SASL.
func (c *Conn) Config(clientID string) *sarama.Config {
	cfg := Config(clientID)
	if c == nil {
		return cfg
	}
	if c.TLS != nil {
		// microfn's dialer does the handshake, so that it is bounded by the
		// dial timeout and a failed one is not tried again at once.
		cfg.Net.Proxy.Enable = true
		cfg.Net.Proxy.Dialer = &tlsDialer{tls: c.TLS, timeout: cfg.Net.DialTimeout, keepAlive: cfg.Net.KeepAlive}
	}
	if c.Mechanism != "" {
		cfg.Net.SASL.Enable = true
		cfg.Net.SASL.Handshake = true
		cfg.Net.SASL.Version = sarama.SASLHandshakeV1
		cfg.Net.SASL.Mechanism = sarama.SASLMechanism(c.Mechanism)
		cfg.Net.SASL.User = c.User
		cfg.Net.SASL.Password = c.Password
		if strings.HasPrefix(c.Mechanism, "SCRAM-") {
			mech := c.Mechanism
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{mech: mech} }
		}
	}
	return cfg
}

// String describes c without its password, for logs.
func (c *Conn) String() string {
	if c == nil {
		return "plaintext"
	}
	var parts []string
	if c.TLS != nil {
		parts = append(parts, "TLS")
		if c.TLS.InsecureSkipVerify {
			parts = append(parts, "(certificates NOT verified)")
		}
	}
	if c.Mechanism != "" {
		parts = append(parts, "SASL "+c.Mechanism+" as "+c.User)
	}
	return strings.Join(parts, " ")
}

// scramClient runs package scram for sarama, so that sarama and kwire
// share one implementation.
type scramClient struct {
	mech string
	s    *scram.Session
	done bool
}

func (c *scramClient) Begin(user, password, _ string) error {
	f := scram.SHA512
	if c.mech == sarama.SASLTypeSCRAMSHA256 {
		f = scram.SHA256
	}
	c.s = f(user, password).Start()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) {
	var in []byte
	if challenge != "" {
		in = []byte(challenge)
	}
	out, done, err := c.s.Step(in)
	c.done = done
	return string(out), err
}

func (c *scramClient) Done() bool { return c.done }

// tlsDialer opens TLS connections for sarama, the handshake included
// within the timeout. A handshake that failed fails again at once for
// failedFor: sarama tries each broker several times, and a certificate
// does not change between its attempts.
type tlsDialer struct {
	tls       *tls.Config
	timeout   time.Duration
	keepAlive time.Duration

	mu     sync.Mutex
	failed map[string]failedDial
}

type failedDial struct {
	err error
	at  time.Time
}

const failedFor = 5 * time.Second

func (d *tlsDialer) Dial(network, addr string) (net.Conn, error) {
	d.mu.Lock()
	f, ok := d.failed[addr]
	d.mu.Unlock()
	if ok && time.Since(f.at) < failedFor {
		return nil, f.err
	}
	nd := &net.Dialer{Timeout: d.timeout, KeepAlive: d.keepAlive}
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	raw, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn, err := ktls.Client(ctx, raw, addr, d.tls)
	if err != nil {
		d.mu.Lock()
		if d.failed == nil {
			d.failed = map[string]failedDial{}
		}
		d.failed[addr] = failedDial{err: err, at: time.Now()}
		d.mu.Unlock()
		return nil, err
	}
	return conn, nil
}

// NewClient connects a sarama client with cfg (from c.Config) to brokers,
// and explains a failure in one line naming its likely cause. It first
// checks that a broker answers as Kafka within the dial timeout.
func (c *Conn) NewClient(brokers []string, cfg *sarama.Config) (sarama.Client, error) {
	if err := c.probe(brokers, cfg); err != nil {
		return nil, c.Explain(brokers, err)
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, c.Explain(brokers, err)
	}
	return client, nil
}

// ErrUnreachable marks a failure to connect to Kafka.
var ErrUnreachable = errors.New("cannot reach Kafka")

// Explain turns a failure to connect into one line that names the cause:
// a wrong password, an untrusted certificate, a TLS client against a
// plaintext listener or the other way round. It keeps err's chain.
func (c *Conn) Explain(brokers []string, err error) error {
	if err == nil {
		return nil
	}
	tlsOn := c != nil && c.TLS != nil
	saslOn := c != nil && c.Mechanism != ""
	cause := ktls.Cause(err)
	switch {
	case cause != "":
	case errors.Is(err, errNotKafka):
		cause = "the peer does not speak the Kafka protocol (a wrong port? or a TLS listener: --tls)"
	case errors.Is(err, sarama.ErrSASLAuthenticationFailed):
		cause = fmt.Sprintf("SASL %s authentication as %q failed: wrong user name or password", c.Mechanism, c.User)
	case errors.Is(err, sarama.ErrUnsupportedSASLMechanism):
		cause = fmt.Sprintf("the listener does not offer SASL %s", c.Mechanism)
	case tlsOn && saslOn && isClosedEarly(err):
		// The handshake succeeded (the dialer would have said otherwise):
		// the broker hung up during or after authentication.
		cause = fmt.Sprintf("the broker closed the connection after TLS, during SASL %s: wrong user name or password?", c.Mechanism)
	case !tlsOn && isClosedEarly(err):
		cause = "the broker closed the connection: the listener may expect TLS (--tls) or SASL (--sasl-mechanism)"
	}
	if cause == "" {
		return fmt.Errorf("%w at %v: %w", ErrUnreachable, brokers, err)
	}
	return fmt.Errorf("%w at %v: %s: %w", ErrUnreachable, brokers, cause, err)
}

// isClosedEarly says whether the peer closed or reset the connection
// during a handshake.
func isClosedEarly(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
