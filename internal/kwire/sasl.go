package kwire

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Mechanism is a SASL mechanism with its credentials: Plain, ScramSHA256
// or ScramSHA512. Without TLS (see WithDialer), PLAIN sends the password
// in the clear; SCRAM never sends it.
type Mechanism interface {
	// Name is the mechanism's SASL name, for example "SCRAM-SHA-512".
	Name() string
	validate() error
	start() saslSession
}

// saslSession is one authentication exchange. step takes the server's last
// message (nil at first) and returns the next message to send, or done
// once the exchange is complete (with a last message to send, or none).
type saslSession interface {
	step(challenge []byte) (msg []byte, done bool, err error)
}

// Plain is SASL/PLAIN with a user name and password.
func Plain(user, password string) Mechanism { return plain{user, password} }

type plain struct{ user, pass string }

func (plain) Name() string { return "PLAIN" }

func (p plain) validate() error {
	if p.user == "" {
		return errors.New("SASL PLAIN needs a user name")
	}
	if strings.IndexByte(p.user, 0) >= 0 || strings.IndexByte(p.pass, 0) >= 0 {
		return errors.New("SASL PLAIN credentials cannot contain NUL")
	}
	return nil
}

func (p plain) start() saslSession { return p }

func (p plain) step([]byte) ([]byte, bool, error) {
	return []byte("\x00" + p.user + "\x00" + p.pass), true, nil
}

// ScramSHA256 is SASL/SCRAM-SHA-256 (RFC 7677) with a user name and
// password.
func ScramSHA256(user, password string) Mechanism {
	return scram{name: "SCRAM-SHA-256", hash: sha256.New, user: user, pass: password}
}

// ScramSHA512 is SASL/SCRAM-SHA-512 with a user name and password.
func ScramSHA512(user, password string) Mechanism {
	return scram{name: "SCRAM-SHA-512", hash: sha512.New, user: user, pass: password}
}

type scram struct {
	name       string
	hash       func() hash.Hash
	user, pass string
}

func (s scram) Name() string { return s.name }

func (s scram) validate() error {
	if s.user == "" {
		return fmt.Errorf("SASL %s needs a user name", s.name)
	}
	return nil
}

func (s scram) start() saslSession { return &scramSession{scram: s} }

// scramSession follows RFC 5802: client-first, server-first, client-final
// with the proof, server-final with the server's signature, which the
// client checks so that a server that does not know the password cannot
// pose as the cluster.
type scramSession struct {
	scram
	state       int
	clientNonce string
	firstBare   string
	serverSig   []byte
}

// saslName escapes a user name as RFC 5802 asks.
func saslName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

func (s *scramSession) step(challenge []byte) ([]byte, bool, error) {
	switch s.state {
	case 0:
		s.state = 1
		var nonce [24]byte
		_, _ = rand.Read(nonce[:]) // never fails: crypto/rand panics instead
		s.clientNonce = base64.RawStdEncoding.EncodeToString(nonce[:])
		s.firstBare = "n=" + saslName(s.user) + ",r=" + s.clientNonce
		return []byte("n,," + s.firstBare), false, nil
	case 1:
		s.state = 2
		return s.final(string(challenge))
	case 2:
		s.state = 3
		attrs := scramAttrs(string(challenge))
		if e, ok := attrs["e"]; ok {
			return nil, false, fmt.Errorf("%s: server refused: %s", s.name, e)
		}
		got, err := base64.StdEncoding.DecodeString(attrs["v"])
		if err != nil || !hmac.Equal(got, s.serverSig) {
			return nil, false, fmt.Errorf("%s: the server's signature is wrong: it does not know the password", s.name)
		}
		return nil, true, nil
	}
	return nil, false, errors.New("SCRAM exchange already complete")
}

// final answers the server-first message with the client's proof.
func (s *scramSession) final(serverFirst string) ([]byte, bool, error) {
	attrs := scramAttrs(serverFirst)
	nonce, salt64, iter := attrs["r"], attrs["s"], attrs["i"]
	if e, ok := attrs["e"]; ok {
		return nil, false, fmt.Errorf("%s: server refused: %s", s.name, e)
	}
	if !strings.HasPrefix(nonce, s.clientNonce) || len(nonce) == len(s.clientNonce) {
		return nil, false, fmt.Errorf("%s: server nonce does not extend the client's", s.name)
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || len(salt) == 0 {
		return nil, false, fmt.Errorf("%s: bad salt from server", s.name)
	}
	n, err := strconv.Atoi(iter)
	if err != nil || n < 1 || n > 1<<20 {
		return nil, false, fmt.Errorf("%s: bad iteration count %q from server", s.name, iter)
	}
	salted, err := pbkdf2.Key(s.hash, s.pass, salt, n, s.hash().Size())
	if err != nil {
		return nil, false, fmt.Errorf("%s: %v", s.name, err)
	}
	clientKey := s.mac(salted, "Client Key")
	h := s.hash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	withoutProof := "c=biws,r=" + nonce // biws: base64 of the GS2 header "n,,"
	authMsg := s.firstBare + "," + serverFirst + "," + withoutProof
	proof := s.mac(storedKey, authMsg)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	s.serverSig = s.mac(s.mac(salted, "Server Key"), authMsg)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), false, nil
}

func (s *scramSession) mac(key []byte, msg string) []byte {
	m := hmac.New(s.hash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// scramAttrs splits "k=v,k=v" (values may contain '=').
func scramAttrs(msg string) map[string]string {
	out := make(map[string]string)
	for _, kv := range strings.Split(msg, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && len(k) == 1 {
			out[k] = v
		}
	}
	return out
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
	sess := m.start()
	var challenge []byte
	for {
		msg, done, err := sess.step(challenge)
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
