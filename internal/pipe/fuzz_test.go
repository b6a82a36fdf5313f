package pipe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"reflect"
	"testing"
	"time"
)

// edgeSeeds are bodies that probe the decoder's bounds rather than its
// happy path.
func edgeSeeds() [][]byte {
	huge := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	zigzag := func(v int64) []byte { return binary.AppendVarint(nil, v) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	str := []byte{2, 't'} // the string "t"
	null := []byte{0}
	zero := []byte{0} // varint 0
	seeds := [][]byte{
		{},
		{0}, {1}, {2}, {0x7f}, {0x80}, {0xff},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},       // max uint64
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},       // overflows uint64
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // 11 bytes
		{0x80, 0x00},  // non-canonical zero
		huge(1 << 62), // string length 2^62
		huge(math.MaxUint64),
		cat(str, zigzag(math.MaxInt32+1)),
		// Message: counts of 2^62 and -1 where the headers go.
		cat(str, zero, zero, null, null, zigzag(1<<62)),
		cat(str, zero, zero, null, null, zigzag(-1)),
		cat(str, zero, zero, null, null, zigzag(math.MaxInt64)),
		// Outcome: the same where the events and an event's headers go.
		cat(zero, str, str, zigzag(1<<62)),
		cat(zero, str, str, zigzag(1), str, null, null, zigzag(1<<62)),
		cat(zero, null, str, zero),
	}
	return seeds
}

// normMessage is m with its times replaced by what the codec promises to
// keep, the instant in nanoseconds (0 for the zero time), so DeepEqual
// compares everything else, nil versus empty slices included.
type normMessage struct {
	M                   Message
	Timestamp, Deadline int64
}

func norm(m *Message) normMessage {
	n := normMessage{M: *m, Timestamp: unixNano(m.Timestamp), Deadline: unixNano(m.Deadline)}
	n.M.Timestamp, n.M.Deadline = time.Time{}, time.Time{}
	return n
}

// reread reads frame back as exactly one frame of type typ.
func reread(t *testing.T, typ byte, frame []byte) []byte {
	t.Helper()
	r := bytes.NewReader(frame)
	got, b, err := ReadFrame(r)
	if err != nil || got != typ || r.Len() != 0 {
		t.Fatalf("re-encoded frame: type %q, %d bytes left, %v", got, r.Len(), err)
	}
	return b
}

func FuzzDecodeMessage(f *testing.F) {
	for _, tc := range messageCases {
		f.Add(body(f, TypeMessage, EncodeMessage(&tc.in)))
	}
	for _, s := range edgeSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m1, err := DecodeMessage(in)
		if err != nil {
			if !errors.Is(err, ErrFrame) || m1 != nil {
				t.Fatalf("DecodeMessage = %v, %v; want nil, ErrFrame", m1, err)
			}
			return
		}
		f1 := EncodeMessage(m1)
		m2, err := DecodeMessage(reread(t, TypeMessage, f1))
		if err != nil {
			t.Fatalf("decoding a re-encoded message: %v", err)
		}
		if a, b := norm(m1), norm(m2); !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed the message\n got %#v\nwant %#v", b, a)
		}
		// The input may use non-canonical varints, but the encoder's
		// output is canonical: encoding it again changes nothing.
		if f2 := EncodeMessage(m2); !bytes.Equal(f1, f2) {
			t.Fatalf("encoding is not a fixed point\n% x\n% x", f1, f2)
		}
	})
}

func FuzzDecodeOutcome(f *testing.F) {
	for _, tc := range outcomeCases {
		f.Add(body(f, TypeOutcome, EncodeOutcome(&tc.in)))
	}
	for _, s := range edgeSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		o1, err := DecodeOutcome(in)
		if err != nil {
			if !errors.Is(err, ErrFrame) || o1 != nil {
				t.Fatalf("DecodeOutcome = %v, %v; want nil, ErrFrame", o1, err)
			}
			return
		}
		f1 := EncodeOutcome(o1)
		o2, err := DecodeOutcome(reread(t, TypeOutcome, f1))
		if err != nil {
			t.Fatalf("decoding a re-encoded outcome: %v", err)
		}
		if !reflect.DeepEqual(o1, o2) {
			t.Fatalf("round trip changed the outcome\n got %#v\nwant %#v", o2, o1)
		}
		if f2 := EncodeOutcome(o2); !bytes.Equal(f1, f2) {
			t.Fatalf("encoding is not a fixed point\n% x\n% x", f1, f2)
		}
	})
}

// allocSlack covers ReadFrame's own small allocations and the reader.
const allocSlack = 64 << 10

func FuzzReadFrame(f *testing.F) {
	var stream bytes.Buffer
	stream.Write(AppendReady())
	stream.Write(EncodeMessage(&messageCases[len(messageCases)-1].in))
	stream.Write(EncodeOutcome(&outcomeCases[len(outcomeCases)-1].in))
	f.Add(stream.Bytes())
	f.Add(AppendReady())
	f.Add([]byte{})
	f.Add([]byte{0, 0})
	f.Add(header(0))
	f.Add(header(MaxFrame))
	f.Add(header(MaxFrame + 1))
	f.Add(header(math.MaxUint32))
	f.Add(append(header(3), 'M', 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			left := r.Len()
			var (
				typ byte
				b   []byte
				err error
			)
			if n := heapAlloc(func() { typ, b, err = ReadFrame(r) }); n > MaxFrame+allocSlack {
				t.Fatalf("ReadFrame allocated %d bytes", n)
			}
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFrame) {
					t.Fatalf("unexpected error %v", err)
				}
				if errors.Is(err, io.EOF) && left != 0 {
					t.Fatalf("io.EOF with %d bytes left; want io.ErrUnexpectedEOF", left)
				}
				return
			}
			if used := left - r.Len(); used != 4+1+len(b) || len(b)+1 > MaxFrame {
				t.Fatalf("frame with %d-byte body consumed %d bytes", len(b), used)
			}
			// Whatever arrives, decoding it must not panic.
			switch typ {
			case TypeMessage:
				_, _ = DecodeMessage(b)
			case TypeOutcome:
				_, _ = DecodeOutcome(b)
			}
		}
	})
}
