// Package pipe is the protocol between the restarter and a function
// process built with fn. The process gets two pipes, named by FN_PIPE as
// "IN,OUT" file descriptors:
//
//	process → restarter  Ready           once started and waiting
//	restarter → process  Message         the one message to handle
//	process → restarter  Outcome         what became of it, with emitted events
//
// then the process exits. A restarter that closes IN without sending a
// message tells a warm process to exit (the pool shrank or is stopping).
//
// Every frame is a 4-byte big-endian length, then a type byte and the
// fields: integers as varints, byte strings as a uvarint length plus one
// (0 meaning null) followed by the bytes. The package imports only the
// standard library: function binaries link it.
package pipe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// EnvPipe names the environment variable that tells a function process it
// runs under the restarter, and which file descriptors are its pipes.
const EnvPipe = "FN_PIPE"

// MaxFrame bounds a frame: larger is a protocol error, not an allocation.
const MaxFrame = 64 << 20

// Frame types.
const (
	TypeReady   byte = 'R'
	TypeMessage byte = 'M'
	TypeOutcome byte = 'O'
)

// ErrFrame reports a malformed frame.
var ErrFrame = errors.New("pipe: malformed frame")

// Message is the message frame.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil: null key
	Value     []byte // nil: null value
	Headers   []Header
	Timestamp time.Time
	Attempt   int
	Deadline  time.Time
}

// Header is a record header.
type Header struct{ Key, Value string }

// Outcome is the outcome frame: the result of one attempt. Failure is a
// delivery.Failure, empty on success. The restarter decides what follows
// from Failure and its own attempt count. The frame's first field is
// reserved: written as 0 and ignored when read (protocol 1 had the
// function's own guess at what follows there, which nobody read).
type Outcome struct {
	Failure string
	Error   string
	Events  []Event
}

// Event is an emitted record.
type Event struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers []Header
}

type enc struct{ b []byte }

func (e *enc) varint(v int64) { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) bytes(p []byte) {
	if p == nil {
		e.b = binary.AppendUvarint(e.b, 0)
		return
	}
	e.b = binary.AppendUvarint(e.b, uint64(len(p))+1)
	e.b = append(e.b, p...)
}
func (e *enc) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s))+1)
	e.b = append(e.b, s...)
}
func (e *enc) headers(hs []Header) {
	e.varint(int64(len(hs)))
	for _, h := range hs {
		e.str(h.Key)
		e.str(h.Value)
	}
}

func frame(typ byte, body func(*enc)) []byte {
	e := &enc{b: make([]byte, 5, 128)}
	e.b[4] = typ
	body(e)
	binary.BigEndian.PutUint32(e.b, uint32(len(e.b)-4))
	return e.b
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// AppendReady returns the ready frame.
func AppendReady() []byte { return frame(TypeReady, func(*enc) {}) }

// EncodeMessage returns m as a frame.
func EncodeMessage(m *Message) []byte {
	return frame(TypeMessage, func(e *enc) {
		e.str(m.Topic)
		e.varint(int64(m.Partition))
		e.varint(m.Offset)
		e.bytes(m.Key)
		e.bytes(m.Value)
		e.headers(m.Headers)
		e.varint(unixNano(m.Timestamp))
		e.varint(int64(m.Attempt))
		e.varint(unixNano(m.Deadline))
	})
}

// EncodeOutcome returns o as a frame.
func EncodeOutcome(o *Outcome) []byte {
	return frame(TypeOutcome, func(e *enc) {
		e.varint(0) // reserved
		e.str(o.Failure)
		e.str(o.Error)
		e.varint(int64(len(o.Events)))
		for _, ev := range o.Events {
			e.str(ev.Topic)
			e.bytes(ev.Key)
			e.bytes(ev.Value)
			e.headers(ev.Headers)
		}
	})
}

// ReadFrame reads one frame and returns its type and body.
func ReadFrame(r io.Reader) (byte, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 1 || n > MaxFrame {
		return 0, nil, fmt.Errorf("%w: length %d", ErrFrame, n)
	}
	// Grow with the bytes that actually arrive: a length claiming MaxFrame
	// costs nothing until the data is there.
	var buf bytes.Buffer
	if n <= 64<<10 {
		buf.Grow(int(n))
	}
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	b := buf.Bytes()
	return b[0], b[1:], nil
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = ErrFrame
	}
	d.b = nil
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) int32() int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail()
		return 0
	}
	return int32(v)
}

func (d *dec) bytes() []byte {
	l, n := binary.Uvarint(d.b)
	if n <= 0 || l > uint64(len(d.b)-n)+1 {
		d.fail()
		return nil
	}
	d.b = d.b[n:]
	if l == 0 {
		return nil
	}
	p := d.b[: l-1 : l-1]
	d.b = d.b[l-1:]
	return p
}

func (d *dec) str() string {
	p := d.bytes()
	if p == nil && d.err == nil {
		d.fail() // strings are never null
	}
	return string(p)
}

func (d *dec) count() int {
	v := d.varint()
	// Every element takes at least one byte: a count beyond the rest of
	// the frame is malformed, not a reason to allocate.
	if v < 0 || v > int64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *dec) headers() []Header {
	n := d.count()
	if n == 0 {
		return nil
	}
	// No capacity from n: a hostile count must not reserve memory.
	var hs []Header
	for range n {
		k := d.str()
		v := d.str()
		if d.err != nil {
			return nil
		}
		hs = append(hs, Header{k, v})
	}
	return hs
}

func (d *dec) done() error {
	if d.err == nil && len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrFrame, len(d.b))
	}
	return d.err
}

// DecodeMessage decodes a message frame body.
func DecodeMessage(body []byte) (*Message, error) {
	d := &dec{b: body}
	m := &Message{}
	m.Topic = d.str()
	m.Partition = d.int32()
	m.Offset = d.varint()
	m.Key = d.bytes()
	m.Value = d.bytes()
	m.Headers = d.headers()
	m.Timestamp = fromUnixNano(d.varint())
	m.Attempt = int(d.int32())
	m.Deadline = fromUnixNano(d.varint())
	if err := d.done(); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeOutcome decodes an outcome frame body.
func DecodeOutcome(body []byte) (*Outcome, error) {
	d := &dec{b: body}
	o := &Outcome{}
	_ = d.int32() // reserved
	o.Failure = d.str()
	o.Error = d.str()
	n := d.count()
	for range n {
		ev := Event{Topic: d.str(), Key: d.bytes(), Value: d.bytes(), Headers: d.headers()}
		if d.err != nil {
			break
		}
		o.Events = append(o.Events, ev)
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return o, nil
}
