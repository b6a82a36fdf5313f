package kwire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Mechanism is a SASL mechanism with its credentials. PLAIN is built in;
// SCRAM-SHA-256 and SCRAM-SHA-512 come with package kwire/kscram, because
// the standard library's crypto packages it links add about 0.07 ms to
// every process start, and SCRAM without TLS is rare: a TLS dialer links
// them anyway. Without TLS (see WithDialer), PLAIN sends the password in
// the clear.
type Mechanism interface {
	// Name is the mechanism's SASL name, for example "SCRAM-SHA-512".
	Name() string
	// Start begins an exchange on a new connection.
	Start() Session
}

// Session is one authentication exchange.
type Session interface {
	// Step takes the server's last message (nil at first) and returns the
	// next message to send, and done once the exchange is complete (with a
	// last message to send, or none).
	Step(challenge []byte) (msg []byte, done bool, err error)
}

var (
	mechanismsMu sync.RWMutex
	mechanisms   = map[string]func(user, password string) Mechanism{}
)

// RegisterMechanism makes NewMechanism build the SASL mechanism called
// name (upper case) with f. Call it from an init function.
func RegisterMechanism(name string, f func(user, password string) Mechanism) {
	mechanismsMu.Lock()
	mechanisms[name] = f
	mechanismsMu.Unlock()
}

// NewMechanism returns the SASL mechanism called name (PLAIN, or one
// registered, such as SCRAM-SHA-512 by kwire/kscram) with credentials.
func NewMechanism(name, user, password string) (Mechanism, error) {
	name = strings.ToUpper(name)
	if user == "" {
		return nil, fmt.Errorf("%w: SASL %s needs a user name", ErrConfig, name)
	}
	if name == "PLAIN" {
		if strings.IndexByte(user, 0) >= 0 || strings.IndexByte(password, 0) >= 0 {
			return nil, fmt.Errorf("%w: SASL PLAIN credentials cannot contain NUL", ErrConfig)
		}
		return Plain(user, password), nil
	}
	mechanismsMu.RLock()
	f := mechanisms[name]
	mechanismsMu.RUnlock()
	if f != nil {
		return f(user, password), nil
	}
	if strings.HasPrefix(name, "SCRAM-SHA-") {
		return nil, fmt.Errorf("%w: SASL %s is not linked into this binary: importing github.com/microfn/microfn/internal/kwire/kscram adds it", ErrConfig, name)
	}
	return nil, fmt.Errorf("%w: unknown SASL mechanism %q (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", ErrConfig, name)
}

// Plain is SASL/PLAIN with a user name and password.
func Plain(user, password string) Mechanism { return plain{user, password} }

type plain struct{ user, pass string }

func (plain) Name() string { return "PLAIN" }

func (p plain) Start() Session { return p }

func (p plain) Step([]byte) ([]byte, bool, error) {
	if strings.IndexByte(p.user, 0) >= 0 || strings.IndexByte(p.pass, 0) >= 0 {
		return nil, false, errors.New("PLAIN credentials cannot contain NUL")
	}
	return []byte("\x00" + p.user + "\x00" + p.pass), true, nil
}

// authenticate runs SaslHandshake then the mechanism's exchange in
// SaslAuthenticate requests.
func (b *brokerConn) authenticate(ctx context.Context, m Mechanism) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	fail := func(err error) error {
		return &BrokerError{Addr: b.addr, Op: "SASL " + m.Name() + " authentication", Err: err}
	}
	v, err := b.version(keySASLHandshake, -1)
	if err != nil {
		return err
	}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(v)
	hs.Mechanism = m.Name()
	resp, err := b.roundTrip(ctx, hs, b.timeout, maxHandshakeResponse)
	if err != nil {
		return err
	}
	if r := resp.(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		if len(r.SupportedMechanisms) == 0 {
			return fail(fmt.Errorf("%w: the listener does not use SASL", Error(r.ErrorCode)))
		}
		return fail(fmt.Errorf("%w: the broker offers %s", Error(r.ErrorCode), strings.Join(r.SupportedMechanisms, ", ")))
	}
	av, err := b.version(keySASLAuthenticate, -1)
	if err != nil {
		return err
	}
	sess := m.Start()
	var challenge []byte
	for {
		msg, done, err := sess.Step(challenge)
		if err != nil {
			return fail(err)
		}
		if msg == nil && done {
			return nil
		}
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.SetVersion(av)
		req.SASLAuthBytes = msg
		resp, err := b.roundTrip(ctx, req, b.timeout, maxHandshakeResponse)
		if errors.Is(err, errConnDropped) {
			// Some brokers answer bad credentials by hanging up.
			return fail(errors.New("the broker closed the connection: wrong credentials?"))
		}
		if err != nil {
			return err
		}
		r := resp.(*kmsg.SASLAuthenticateResponse)
		if r.ErrorCode != 0 {
			return fail(withMessage(Error(r.ErrorCode), r.ErrorMessage))
		}
		if done {
			return nil
		}
		challenge = bytes.Clone(r.SASLAuthBytes)
	}
}
