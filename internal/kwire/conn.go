package kwire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Bounds on a response's size: a broker's answer to the first request
// (ApiVersions) is a few hundred bytes, so anything large there is another
// protocol; later responses may carry a fetch's batches.
const (
	maxHandshakeResponse = 1 << 20
	maxResponse          = 1 << 30
)

// errNoResponse is a request's deadline passing before its response came.
var errNoResponse = errors.New("no response")

// brokerConn is one connection to one broker. Its requests are serialized:
// one is written and its response read before the next, so the group's
// heartbeats, a fetch's long poll and produces each use their own
// connection (see connRole).
type brokerConn struct {
	addr      string
	conn      Conn
	formatter *kmsg.RequestFormatter
	timeout   time.Duration // RequestTimeout
	caps      map[int16]int16

	dead atomic.Bool // broken is set: dial a new connection

	mu            sync.Mutex
	corr          int32
	served        int                // requests answered after the handshake
	authenticated bool               // SASL succeeded
	versions      map[int16][2]int16 // the broker's min and max per API key
	broken        error              // set once I/O failed: the stream is out of step
}

// version picks the version of key to send: the highest both sides
// implement, at most limit (-1: no limit).
func (b *brokerConn) version(key, limit int16) (int16, error) {
	lo, hi := versionRange(key)
	if c, ok := b.caps[key]; ok && c < hi {
		hi = c
	}
	if limit >= 0 && limit < hi {
		hi = limit
	}
	r, ok := b.versions[key]
	if !ok {
		return 0, &VersionError{Addr: b.addr, Key: key, BrokerMin: -1, BrokerMax: -1, Min: lo, Max: hi}
	}
	v := min(r[1], hi)
	if v < lo || v < r[0] {
		return 0, &VersionError{Addr: b.addr, Key: key, BrokerMin: r[0], BrokerMax: r[1], Min: lo, Max: hi}
	}
	return v, nil
}

// supports reports whether the broker accepts key at version v.
func (b *brokerConn) supports(key, v int16) bool {
	r, ok := b.versions[key]
	return ok && r[0] <= v && v <= r[1]
}

// request sends req at the highest common version (at most limit) and
// returns its response. wait is how long the request asks the broker to
// hold it (a long poll, a join), added to the round-trip timeout.
func (b *brokerConn) request(ctx context.Context, req kmsg.Request, limit int16, wait time.Duration) (kmsg.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.broken != nil {
		return nil, b.broken
	}
	if b.dead.Load() {
		return nil, &BrokerError{Addr: b.addr, Op: apiName(req.Key()), Err: ErrClosed}
	}
	v, err := b.version(req.Key(), limit)
	if err != nil {
		return nil, err
	}
	req.SetVersion(v)
	resp, err := b.roundTrip(ctx, req, b.timeout+wait, maxResponse)
	if err == nil {
		b.served++
		return resp, nil
	}
	if b.served == 0 && !b.authenticated && errors.Is(err, errConnDropped) {
		// A SASL listener hangs up on a client that skips authentication;
		// trying again will not help.
		return nil, &BrokerError{Addr: b.addr, Op: apiName(req.Key()),
			Err: errors.New("the broker closed the connection at the first request after ApiVersions: does its listener require SASL?")}
	}
	return nil, err
}

// roundTrip writes req as it is versioned and reads its response. An I/O
// failure breaks the connection: a late response would be read as the
// next request's.
func (b *brokerConn) roundTrip(ctx context.Context, req kmsg.Request, timeout time.Duration, maxSize int32) (kmsg.Response, error) {
	b.corr++
	corr := b.corr
	msg := b.formatter.AppendRequest(nil, req, corr)

	start := time.Now()
	deadline := start.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := b.conn.SetDeadline(deadline); err != nil {
		return nil, b.fail(req.Key(), err)
	}
	stop := context.AfterFunc(ctx, func() { _ = b.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	body, err := b.exchange(msg, corr, maxSize)
	if err != nil {
		if ctx.Err() != nil {
			b.fail(req.Key(), ctx.Err())
			return nil, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w within %v", errNoResponse, deadline.Sub(start).Round(time.Millisecond))
		}
		return nil, b.fail(req.Key(), err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if req.Key() == keyApiVersions && len(body) >= 2 && Error(binary.BigEndian.Uint16(body)) == UnsupportedVersion {
		// A broker answers a version of ApiVersions it does not know in
		// v0, listing the versions it knows.
		resp.SetVersion(0)
	}
	// Flexible responses have a header tag section, except ApiVersions',
	// which a client must be able to read before it knows any version.
	if resp.IsFlexible() && req.Key() != keyApiVersions {
		if body, err = skipTags(body); err != nil {
			return nil, b.fail(req.Key(), err)
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, b.fail(req.Key(), fmt.Errorf("%w: %s v%d response: %v", ErrCorrupt, apiName(req.Key()), req.GetVersion(), err))
	}
	return resp, nil
}

// exchange writes msg and reads the response to correlation id corr,
// returning its body after the correlation id.
func (b *brokerConn) exchange(msg []byte, corr, maxSize int32) ([]byte, error) {
	if _, err := b.conn.Write(msg); err != nil {
		return nil, unexpectedEOF(err)
	}
	var head [8]byte
	if _, err := io.ReadFull(b.conn, head[:4]); err != nil {
		return nil, unexpectedEOF(err)
	}
	size := int32(binary.BigEndian.Uint32(head[:4]))
	if size < 4 || size > maxSize {
		return nil, notKafka(head[:4], size)
	}
	if _, err := io.ReadFull(b.conn, head[4:]); err != nil {
		return nil, unexpectedEOF(err)
	}
	if got := int32(binary.BigEndian.Uint32(head[4:])); got != corr {
		return nil, fmt.Errorf("%w: response to request %d came for request %d", ErrNotKafka, corr, got)
	}
	body := make([]byte, size-4)
	if _, err := io.ReadFull(b.conn, body); err != nil {
		return nil, unexpectedEOF(err)
	}
	return body, nil
}

// unexpectedEOF names a connection the broker closed or reset.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return errConnDropped
	}
	return err
}

// notKafka names what answered instead of a broker, when its first bytes
// tell.
func notKafka(head []byte, size int32) error {
	switch {
	case head[0] == 0x15 && head[1] == 0x03:
		return fmt.Errorf("%w: it answered with a TLS alert; is it a TLS listener? (TLS needs a TLS dialer)", ErrNotKafka)
	case string(head) == "HTTP":
		return fmt.Errorf("%w: it answered in HTTP", ErrNotKafka)
	case string(head) == "SSH-":
		return fmt.Errorf("%w: it is an SSH server", ErrNotKafka)
	}
	return fmt.Errorf("%w: it answered with a %d-byte message", ErrNotKafka, size)
}

// fail breaks the connection and returns err naming the broker and the
// request.
func (b *brokerConn) fail(key int16, err error) error {
	be := &BrokerError{Addr: b.addr, Op: apiName(key), Err: err}
	if b.broken == nil {
		b.broken = be
		b.dead.Store(true)
		_ = b.conn.Close()
	}
	return be
}

// close closes the connection without waiting for a request in flight,
// which then fails.
func (b *brokerConn) close() {
	b.dead.Store(true)
	_ = b.conn.Close()
}

// skipTags drops a tag section: a count, then per tag its key, size and
// bytes, all unsigned varints.
func skipTags(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, fmt.Errorf("%w: response header tags", ErrCorrupt)
	}
	b = b[k:]
	for range n {
		if _, k = binary.Uvarint(b); k <= 0 {
			return nil, fmt.Errorf("%w: response header tags", ErrCorrupt)
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < size {
			return nil, fmt.Errorf("%w: response header tags", ErrCorrupt)
		}
		b = b[k+int(size):]
	}
	return b, nil
}

// handshake negotiates versions on a new connection and authenticates it.
func (b *brokerConn) handshake(ctx context.Context, m Mechanism) error {
	if err := b.apiVersions(ctx); err != nil {
		return err
	}
	if m == nil {
		return nil
	}
	if err := b.authenticate(ctx, m); err != nil {
		return err
	}
	b.authenticated = true
	return nil
}

// apiVersions learns the broker's versions. A broker answers a version of
// ApiVersions it does not know with UNSUPPORTED_VERSION and the versions it
// does know; kwire then asks again at the highest of those.
func (b *brokerConn) apiVersions(ctx context.Context) error {
	_, hi := versionRange(keyApiVersions)
	if c, ok := b.caps[keyApiVersions]; ok && c < hi {
		hi = c
	}
	for try := 0; ; try++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(hi)
		req.ClientSoftwareName = "microfn-kwire"
		req.ClientSoftwareVersion = "1"
		b.mu.Lock()
		resp, err := b.roundTrip(ctx, req, b.timeout, maxHandshakeResponse)
		b.mu.Unlock()
		if errors.Is(err, errConnDropped) {
			// What a TLS listener does to a plaintext client, among others.
			return &BrokerError{Addr: b.addr, Op: "ApiVersions", Err: fmt.Errorf("%w before answering: is it a TLS listener, or not a Kafka broker?", errConnDropped)}
		}
		if err != nil {
			return err
		}
		r := resp.(*kmsg.ApiVersionsResponse)
		if Error(r.ErrorCode) == UnsupportedVersion && try == 0 {
			theirs := int16(0)
			for _, k := range r.ApiKeys {
				if k.ApiKey == keyApiVersions {
					theirs = k.MaxVersion
				}
			}
			if theirs >= hi {
				return &BrokerError{Addr: b.addr, Op: "ApiVersions", Err: Error(r.ErrorCode)}
			}
			hi = theirs
			continue
		}
		if err := errorCode(r.ErrorCode); err != nil {
			return &BrokerError{Addr: b.addr, Op: "ApiVersions", Err: err}
		}
		b.versions = make(map[int16][2]int16, len(r.ApiKeys))
		for _, k := range r.ApiKeys {
			b.versions[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
		return nil
	}
}
