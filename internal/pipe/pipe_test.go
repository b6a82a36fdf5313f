package pipe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// allBytes holds every byte value once, so binary payloads cover 0x00,
// 0x80 (a varint continuation bit) and 0xff.
var allBytes = func() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

var (
	ts1 = time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.UTC)
	ts2 = time.Date(1969, 7, 20, 20, 17, 40, 1, time.FixedZone("X", -5*3600)) // before the epoch: a negative varint
)

type messageCase struct {
	name string
	in   Message
	want *Message // nil: want == in
}

// messageCases are shared with the fuzz seeds.
var messageCases = []messageCase{
	{name: "zero", in: Message{}},
	{name: "nil key and value", in: Message{Topic: "t", Key: nil, Value: nil}},
	{name: "empty key and value", in: Message{Topic: "t", Key: []byte{}, Value: []byte{}}},
	{name: "nil key empty value", in: Message{Topic: "t", Key: nil, Value: []byte{}}},
	{name: "empty key nil value", in: Message{Topic: "t", Key: []byte{}, Value: nil}},
	{name: "binary", in: Message{Topic: "bin\x00\xff", Key: allBytes[:128], Value: allBytes}},
	{name: "headers", in: Message{Topic: "t", Value: []byte("v"), Headers: []Header{
		{"a", "1"}, {"empty", ""}, {"a", "2"}, {"", "no key"}, {"", ""}, {"a", "1"},
	}}},
	// A count of zero carries no nil/empty distinction for headers.
	{name: "empty headers", in: Message{Topic: "t", Headers: []Header{}}, want: &Message{Topic: "t"}},
	{name: "timestamps", in: Message{Topic: "t", Timestamp: ts1, Deadline: ts1.Add(30 * time.Second)}},
	{name: "timestamp before epoch", in: Message{Topic: "t", Timestamp: ts2}},
	{name: "deadline only", in: Message{Topic: "t", Deadline: ts1}},
	{name: "offset -1", in: Message{Topic: "t", Offset: -1}},
	{name: "offset min", in: Message{Topic: "t", Offset: math.MinInt64}},
	{name: "offset max", in: Message{Topic: "t", Offset: math.MaxInt64}},
	{name: "partition bounds", in: Message{Topic: "t", Partition: math.MinInt32, Offset: 1}},
	{name: "partition max", in: Message{Topic: "t", Partition: math.MaxInt32}},
	{name: "attempt 1", in: Message{Topic: "t", Attempt: 1}},
	{name: "attempt 7", in: Message{Topic: "t", Attempt: 7}},
	{name: "attempt max", in: Message{Topic: "t", Attempt: math.MaxInt32}},
	{name: "everything", in: Message{
		Topic: "orders.v1", Partition: 3, Offset: 1 << 40, Key: []byte("k"), Value: bytes.Repeat([]byte("x"), 1000),
		Headers: []Header{{"trace", "abc"}}, Timestamp: ts1, Attempt: 2, Deadline: ts1.Add(time.Minute),
	}},
}

type outcomeCase struct {
	name string
	in   Outcome
	want *Outcome
}

var outcomeCases = []outcomeCase{
	{name: "zero", in: Outcome{}},
	{name: "failure", in: Outcome{Failure: "retry", Error: "boom: \x00\xff"}},
	{name: "empty events", in: Outcome{Events: []Event{}}, want: &Outcome{}},
	{name: "one event", in: Outcome{Events: []Event{
		{Topic: "out", Key: []byte("k"), Value: []byte("v"), Headers: []Header{{"h", ""}, {"h", "2"}}},
	}}},
	{name: "nil and empty event payloads", in: Outcome{Events: []Event{
		{Topic: "a"},
		{Topic: "b", Key: []byte{}, Value: []byte{}},
		{Topic: "c", Key: nil, Value: []byte{}},
		{Topic: "d", Key: []byte{}, Value: nil},
		{Topic: "", Key: allBytes, Value: allBytes},
	}}},
	{name: "many events", in: Outcome{Events: manyEvents(300)}},
}

func manyEvents(n int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = Event{Topic: "t" + strconv.Itoa(i%7), Value: []byte(strconv.Itoa(i))}
		if i%3 == 0 {
			evs[i].Key = []byte{}
		}
		if i%5 == 0 {
			evs[i].Headers = []Header{{"i", strconv.Itoa(i)}, {"i", ""}}
		}
	}
	return evs
}

// body strips the frame header off an encoded frame, checking it first.
func body(t testing.TB, typ byte, frame []byte) []byte {
	t.Helper()
	gotTyp, b, err := ReadFrame(bytes.NewReader(frame))
	if err != nil {
		t.Fatalf("ReadFrame: %v", err)
	}
	if gotTyp != typ {
		t.Fatalf("type %q, want %q", gotTyp, typ)
	}
	return b
}

// sameTime is equality as the codec promises it: the instant, and
// zero-ness. Location and monotonic readings are not carried.
func sameTime(a, b time.Time) bool {
	return a.IsZero() == b.IsZero() && (a.IsZero() || a.Equal(b))
}

// diffMessage returns "" when a and b are equal as the codec promises,
// including nil versus empty Key and Value (reflect.DeepEqual tells them
// apart).
func diffMessage(a, b *Message) string {
	if !sameTime(a.Timestamp, b.Timestamp) {
		return "Timestamp " + a.Timestamp.String() + " != " + b.Timestamp.String()
	}
	if !sameTime(a.Deadline, b.Deadline) {
		return "Deadline " + a.Deadline.String() + " != " + b.Deadline.String()
	}
	x, y := *a, *b
	x.Timestamp, x.Deadline, y.Timestamp, y.Deadline = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(x, y) {
		return "fields differ"
	}
	return ""
}

func TestMessageRoundTrip(t *testing.T) {
	for _, tc := range messageCases {
		t.Run(tc.name, func(t *testing.T) {
			want := &tc.in
			if tc.want != nil {
				want = tc.want
			}
			frame := EncodeMessage(&tc.in)
			if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
				t.Fatalf("length prefix %d, frame carries %d", n, len(frame)-4)
			}
			got, err := DecodeMessage(body(t, TypeMessage, frame))
			if err != nil {
				t.Fatalf("DecodeMessage: %v", err)
			}
			if d := diffMessage(got, want); d != "" {
				t.Fatalf("%s\n got %#v\nwant %#v", d, got, want)
			}
			// Spelled out because it is the point of the null encoding.
			if (got.Key == nil) != (want.Key == nil) || (got.Value == nil) != (want.Value == nil) {
				t.Fatalf("nil-ness lost: key %v value %v", got.Key == nil, got.Value == nil)
			}
		})
	}
}

func TestOutcomeRoundTrip(t *testing.T) {
	for _, tc := range outcomeCases {
		t.Run(tc.name, func(t *testing.T) {
			want := &tc.in
			if tc.want != nil {
				want = tc.want
			}
			got, err := DecodeOutcome(body(t, TypeOutcome, EncodeOutcome(&tc.in)))
			if err != nil {
				t.Fatalf("DecodeOutcome: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("\n got %#v\nwant %#v", got, want)
			}
		})
	}
}

// A function built against protocol 1 wrote its own guess at what follows
// (0 ack, 1 retry, 2 dead-letter) in the first field; it is read and
// ignored.
func TestOutcomeReservedFieldIsIgnored(t *testing.T) {
	b := body(t, TypeOutcome, EncodeOutcome(&Outcome{Failure: "error", Error: "boom"}))
	if b[0] != 0 {
		t.Fatalf("the reserved field is written as %#x, want 0", b[0])
	}
	b[0] = 4 // varint 2
	got, err := DecodeOutcome(b)
	if err != nil || got.Failure != "error" || got.Error != "boom" {
		t.Fatalf("DecodeOutcome = %+v, %v", got, err)
	}
}

// Decoded bytes alias the frame; their capacity is clipped so that a
// function appending to Key cannot overwrite Value.
func TestDecodedBytesAreClipped(t *testing.T) {
	b := body(t, TypeMessage, EncodeMessage(&Message{Topic: "t", Key: []byte("k"), Value: []byte("value")}))
	m, err := DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(m.Key, "XXXXXXXXXX"...)
	if string(m.Value) != "value" {
		t.Fatalf("appending to Key changed Value to %q", m.Value)
	}
}

func TestAppendReady(t *testing.T) {
	f := AppendReady()
	if !bytes.Equal(f, []byte{0, 0, 0, 1, TypeReady}) {
		t.Fatalf("ready frame % x", f)
	}
	typ, b, err := ReadFrame(bytes.NewReader(f))
	if err != nil || typ != TypeReady || len(b) != 0 {
		t.Fatalf("ReadFrame = %q, %q, %v; want TypeReady, empty body", typ, b, err)
	}
}

// The restarter and the process exchange several frames on one pipe; each
// read must consume exactly one frame.
func TestBackToBack(t *testing.T) {
	var stream bytes.Buffer
	m1 := &messageCases[len(messageCases)-1].in
	m2 := &Message{Topic: "second", Key: []byte{}, Offset: -1}
	o := &outcomeCases[len(outcomeCases)-1].in
	stream.Write(AppendReady())
	stream.Write(EncodeMessage(m1))
	stream.Write(EncodeOutcome(o))
	stream.Write(EncodeMessage(m2))
	stream.Write(AppendReady())

	expect := func(typ byte) []byte {
		t.Helper()
		got, b, err := ReadFrame(&stream)
		if err != nil || got != typ {
			t.Fatalf("ReadFrame = %q, %v; want %q", got, err, typ)
		}
		return b
	}
	expect(TypeReady)
	if got, err := DecodeMessage(expect(TypeMessage)); err != nil || diffMessage(got, m1) != "" {
		t.Fatalf("first message: %v", err)
	}
	if got, err := DecodeOutcome(expect(TypeOutcome)); err != nil || !reflect.DeepEqual(got, o) {
		t.Fatalf("outcome: %v", err)
	}
	if got, err := DecodeMessage(expect(TypeMessage)); err != nil || diffMessage(got, m2) != "" {
		t.Fatalf("second message: %v", err)
	}
	if b := expect(TypeReady); len(b) != 0 {
		t.Fatalf("ready body %q", b)
	}
	if _, _, err := ReadFrame(&stream); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func header(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

func TestReadFrameErrors(t *testing.T) {
	valid := EncodeMessage(&Message{Topic: "t", Value: []byte("hello")})
	tests := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"empty stream", nil, io.EOF},
		{"1 header byte", []byte{0}, io.ErrUnexpectedEOF},
		{"3 header bytes", []byte{0, 0, 0}, io.ErrUnexpectedEOF},
		{"no body", header(10), io.ErrUnexpectedEOF},
		{"short body", valid[:len(valid)-1], io.ErrUnexpectedEOF},
		{"type byte only of 2", append(header(2), TypeReady), io.ErrUnexpectedEOF},
		{"length 0", header(0), ErrFrame},
		{"length 0 with bytes after", append(header(0), 'R'), ErrFrame},
		{"length MaxFrame+1", header(MaxFrame + 1), ErrFrame},
		{"length max uint32", header(math.MaxUint32), ErrFrame},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadFrame(bytes.NewReader(tc.stream))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// zeros is an endless stream of zero bytes that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestReadFrameMaxFrame(t *testing.T) {
	r := io.MultiReader(bytes.NewReader(header(MaxFrame)), zeros{})
	typ, b, err := ReadFrame(r)
	if err != nil || typ != 0 || len(b) != MaxFrame-1 {
		t.Fatalf("ReadFrame(MaxFrame) = %q, %d bytes, %v", typ, len(b), err)
	}
}

// raw builds bodies by hand for the malformed cases.
func raw(f func(e *enc)) []byte {
	e := &enc{}
	f(e)
	return e.b
}

// messagePrefix writes a valid message up to, not including, the headers.
func messagePrefix(e *enc) {
	e.str("t")
	e.varint(0)
	e.varint(0)
	e.bytes(nil)
	e.bytes(nil)
}

func TestDecodeMessageErrors(t *testing.T) {
	valid := body(t, TypeMessage, EncodeMessage(&Message{Topic: "t", Key: []byte("k"), Headers: []Header{{"a", "b"}}, Timestamp: ts1}))
	tests := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"empty non-nil", []byte{}},
		{"trailing byte", append(bytes.Clone(valid), 0)},
		{"truncated", valid[:len(valid)-1]},
		{"null topic", raw(func(e *enc) { e.bytes(nil) })},
		{"topic longer than body", append(binary.AppendUvarint(nil, 10), "short"...)},
		{"string length 2^64-1", raw(func(e *enc) { e.b = binary.AppendUvarint(e.b, math.MaxUint64) })},
		{"varint overflow", raw(func(e *enc) {
			e.str("t")
			e.b = append(e.b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
		})},
		{"partition above int32", raw(func(e *enc) { e.str("t"); e.varint(math.MaxInt32 + 1) })},
		{"partition below int32", raw(func(e *enc) { e.str("t"); e.varint(math.MinInt32 - 1) })},
		{"negative header count", raw(func(e *enc) { messagePrefix(e); e.varint(-1) })},
		{"header count 2^62", raw(func(e *enc) { messagePrefix(e); e.varint(1 << 62) })},
		{"header count max", raw(func(e *enc) { messagePrefix(e); e.varint(math.MaxInt64) })},
		{"header count = rest, garbage", raw(func(e *enc) {
			messagePrefix(e)
			e.varint(8)
			e.b = append(e.b, make([]byte, 8)...)
		})},
		{"null header key", raw(func(e *enc) { messagePrefix(e); e.varint(1); e.bytes(nil); e.str("v") })},
		{"null header value", raw(func(e *enc) { messagePrefix(e); e.varint(1); e.str("k"); e.bytes(nil) })},
		{"attempt above int32", raw(func(e *enc) {
			messagePrefix(e)
			e.varint(0)
			e.varint(0)
			e.varint(math.MaxInt32 + 1)
			e.varint(0)
		})},
		{"missing deadline", raw(func(e *enc) { messagePrefix(e); e.varint(0); e.varint(0); e.varint(0) })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeMessage(tc.body)
			if !errors.Is(err, ErrFrame) || m != nil {
				t.Fatalf("DecodeMessage = %#v, %v; want nil, ErrFrame", m, err)
			}
		})
	}
}

func TestDecodeOutcomeErrors(t *testing.T) {
	valid := body(t, TypeOutcome, EncodeOutcome(&outcomeCases[len(outcomeCases)-1].in))
	prefix := func(e *enc) { e.varint(0); e.str(""); e.str("") }
	tests := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"trailing byte", append(bytes.Clone(valid), 0)},
		{"truncated", valid[:len(valid)-1]},
		{"outcome above int32", raw(func(e *enc) { e.varint(math.MaxInt32 + 1); e.str(""); e.str(""); e.varint(0) })},
		{"null failure", raw(func(e *enc) { e.varint(0); e.bytes(nil); e.str(""); e.varint(0) })},
		{"null error", raw(func(e *enc) { e.varint(0); e.str(""); e.bytes(nil); e.varint(0) })},
		{"negative event count", raw(func(e *enc) { prefix(e); e.varint(-1) })},
		{"event count 2^62", raw(func(e *enc) { prefix(e); e.varint(1 << 62) })},
		{"event count beyond events", raw(func(e *enc) {
			prefix(e)
			e.varint(2)
			e.str("t")
			e.bytes(nil)
			e.bytes(nil)
			e.varint(0)
		})},
		{"null event topic", raw(func(e *enc) {
			prefix(e)
			e.varint(1)
			e.bytes(nil)
			e.bytes(nil)
			e.bytes(nil)
			e.varint(0)
		})},
		{"event header count 2^62", raw(func(e *enc) {
			prefix(e)
			e.varint(1)
			e.str("t")
			e.bytes(nil)
			e.bytes(nil)
			e.varint(1 << 62)
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := DecodeOutcome(tc.body)
			if !errors.Is(err, ErrFrame) || o != nil {
				t.Fatalf("DecodeOutcome = %#v, %v; want nil, ErrFrame", o, err)
			}
		})
	}
}

// heapAlloc returns the bytes f allocates on the heap.
func heapAlloc(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A count is checked against the bytes left before anything is sized by
// it: a corrupt count must cost an error, not memory.
func TestHugeCountDoesNotAllocate(t *testing.T) {
	msg := raw(func(e *enc) { messagePrefix(e); e.varint(1 << 62) })
	out := raw(func(e *enc) { e.varint(0); e.str(""); e.str(""); e.varint(1 << 62) })
	var err1, err2 error
	n := heapAlloc(func() {
		_, err1 = DecodeMessage(msg)
		_, err2 = DecodeOutcome(out)
	})
	if !errors.Is(err1, ErrFrame) || !errors.Is(err2, ErrFrame) {
		t.Fatalf("errors %v, %v; want ErrFrame", err1, err2)
	}
	if n > 64<<10 {
		t.Fatalf("decoding huge counts allocated %d bytes", n)
	}
}
