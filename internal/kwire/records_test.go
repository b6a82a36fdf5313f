package kwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func sampleRecords() []*Record {
	ts := time.UnixMilli(1_700_000_000_123)
	return []*Record{
		{Key: []byte("k1"), Value: []byte("v1"), Timestamp: ts},
		{Key: nil, Value: []byte{}, Timestamp: ts.Add(time.Second)},  // null key, empty value
		{Key: []byte{}, Value: nil, Timestamp: ts.Add(-time.Second)}, // empty key, null value
		{Key: []byte("k4"), Value: bytes.Repeat([]byte("x"), 300), Timestamp: ts,
			Headers: []Header{{"a", []byte("1")}, {"a", []byte("2")}, {"null", nil}, {"empty", []byte{}}, {"", []byte("no key")}}},
	}
}

// TestBatchRoundTrip encodes records and decodes them back: null and
// empty keys and values stay distinct, headers keep order, duplicates
// and null values, offsets and timestamps are restored.
func TestBatchRoundTrip(t *testing.T) {
	in := sampleRecords()
	raw := appendBatch(nil, in, time.Now())
	b, rest, ok, err := nextBatch(raw)
	if err != nil || !ok || len(rest) != 0 {
		t.Fatalf("nextBatch: ok %v, %d bytes left, err %v", ok, len(rest), err)
	}
	b.baseOffset = 100 // as a broker assigns it
	out, err := b.records()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d records, want %d", len(out), len(in))
	}
	for i := range in {
		want := *in[i]
		want.Offset = 100 + int64(i)
		if !reflect.DeepEqual(*out[i], want) {
			t.Errorf("record %d:\n got %#v\nwant %#v", i, *out[i], want)
		}
	}
}

// TestBatchMatchesKmsg checks kwire's encoding against kmsg's decoder and
// kwire's decoder against kmsg's encoder: two independent codecs of the
// same format.
func TestBatchMatchesKmsg(t *testing.T) {
	raw := appendBatch(nil, sampleRecords(), time.Now())
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(raw); err != nil {
		t.Fatalf("kmsg cannot read kwire's batch: %v", err)
	}
	if kb.Magic != 2 || kb.NumRecords != 4 || kb.LastOffsetDelta != 3 || kb.ProducerID != -1 || kb.Attributes != 0 {
		t.Fatalf("kmsg read header %+v", kb)
	}
	if got := int32(crc32.Checksum(raw[batchAttrsOff:], crc32.MakeTable(crc32.Castagnoli))); got != kb.CRC {
		t.Fatalf("CRC %08x, hash/crc32 computes %08x", uint32(kb.CRC), uint32(got))
	}
	if kb.FirstTimestamp != 1_700_000_000_123 || kb.MaxTimestamp != 1_700_000_001_123 {
		t.Fatalf("timestamps first %d max %d", kb.FirstTimestamp, kb.MaxTimestamp)
	}

	// kmsg encodes a batch of records with a log-append timestamp; kwire
	// decodes it.
	var recs []byte
	for i, k := range []string{"a", "b"} {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte(k), Value: []byte("v" + k),
			Headers: []kmsg.Header{{Key: "h", Value: []byte(k)}}}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1) // one-byte varint length of 0 was counted
		recs = r.AppendTo(recs)
	}
	kb2 := kmsg.RecordBatch{FirstOffset: 7, Magic: 2, Attributes: attrLogAppendTime, LastOffsetDelta: 1,
		FirstTimestamp: 5, MaxTimestamp: 9, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 2, Records: recs}
	enc := kb2.AppendTo(nil)
	binary.BigEndian.PutUint32(enc[batchLengthOff:], uint32(len(enc)-batchFirstAfter))
	binary.BigEndian.PutUint32(enc[batchCRCOff:], crc32.Checksum(enc[batchAttrsOff:], crc32.MakeTable(crc32.Castagnoli)))
	b, _, ok, err := nextBatch(enc)
	if err != nil || !ok {
		t.Fatalf("nextBatch: %v %v", ok, err)
	}
	out, err := b.records()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[1].Offset != 8 || string(out[1].Key) != "b" || string(out[1].Headers[0].Value) != "b" || out[0].Timestamp.UnixMilli() != 9 {
		t.Fatalf("decoded %+v %+v", out[0], out[1])
	}
}

func TestBatchCorruption(t *testing.T) {
	raw := appendBatch(nil, sampleRecords(), time.Now())

	flipped := bytes.Clone(raw)
	flipped[len(flipped)-3] ^= 1
	if _, _, err := firstRecord(flipped, 0, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped bit: %v, want ErrCorrupt", err)
	}

	// A batch cut short at the end of a fetch response is not an error:
	// it is the next fetch's.
	two := append(bytes.Clone(raw), raw...)
	binary.BigEndian.PutUint64(two[len(raw):], 4) // second batch at offset 4
	r, next, err := firstRecord(two[:len(raw)+30], 4, nil)
	if err != nil || r != nil || next != 4 {
		t.Errorf("truncated second batch: record %v next %d err %v, want none, 4, nil", r, next, err)
	}

	legacy := bytes.Clone(raw)
	legacy[batchMagicOff] = 1
	if _, _, err := firstRecord(legacy, 0, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("magic 1: %v, want ErrCorrupt", err)
	}
}

// batchAt encodes recs as a batch at base with attrs and producer id,
// fixing the CRC.
func batchAt(base int64, attrs int16, producer int64, recs []*Record) []byte {
	raw := appendBatch(nil, recs, time.UnixMilli(1))
	binary.BigEndian.PutUint64(raw, uint64(base))
	binary.BigEndian.PutUint16(raw[batchAttrsOff:], uint16(attrs))
	binary.BigEndian.PutUint64(raw[43:], uint64(producer))
	binary.BigEndian.PutUint32(raw[batchCRCOff:], crc32c(raw[batchAttrsOff:]))
	return raw
}

func controlBatch(base int64, producer int64, typ int16) []byte {
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
	return batchAt(base, attrControl|attrTransactional, producer, []*Record{{Key: key, Value: []byte{0, 0, 0, 0, 0, 0}}})
}

// TestFirstRecordTransactions covers what a fetch skips: records before
// the fetch offset in the first batch, control batches, and (when the
// broker lists aborted transactions, as for read_committed) the records of
// aborted transactions.
func TestFirstRecordTransactions(t *testing.T) {
	rec := func(v string) []*Record { return []*Record{{Value: []byte(v)}} }
	var data []byte
	data = append(data, batchAt(0, 0, -1, []*Record{{Value: []byte("a")}, {Value: []byte("b")}})...)
	data = append(data, batchAt(2, attrTransactional, 7, rec("aborted"))...)
	data = append(data, controlBatch(3, 7, 0)...) // abort
	data = append(data, batchAt(4, attrTransactional, 8, rec("committed"))...)
	data = append(data, controlBatch(5, 8, 1)...) // commit
	data = append(data, batchAt(6, attrTransactional, 7, rec("later, committed"))...)

	aborted := []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 2}}
	cases := []struct {
		from    int64
		aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction
		want    string
		offset  int64
	}{
		{0, nil, "a", 0},
		{1, nil, "b", 1}, // inside the first batch
		{2, nil, "aborted", 2},
		{2, aborted, "committed", 4},
		{3, aborted, "committed", 4},
		{5, aborted, "later, committed", 6}, // the same producer after its abort marker
	}
	for _, c := range cases {
		r, next, err := firstRecord(data, c.from, c.aborted)
		if err != nil || r == nil || string(r.Value) != c.want || r.Offset != c.offset || next != c.offset+1 {
			t.Errorf("from %d (aborted %v): got %v next %d err %v, want %q at %d", c.from, c.aborted, r, next, err, c.want, c.offset)
		}
	}
	// Only control batches: no record, and the next fetch starts after them.
	r, next, err := firstRecord(controlBatch(10, 9, 1), 10, nil)
	if r != nil || next != 11 || err != nil {
		t.Errorf("control only: %v next %d err %v, want none, 11", r, next, err)
	}
}

// FuzzFirstRecord feeds arbitrary bytes to the fetch decoder: it never
// panics, a record it returns is at or after the fetch offset, and the next
// offset never goes back.
func FuzzFirstRecord(f *testing.F) {
	valid := appendBatch(nil, sampleRecords(), time.UnixMilli(1))
	f.Add([]byte{}, int64(0))
	f.Add(make([]byte, batchHeaderLen), int64(0))
	f.Add(valid, int64(0))
	f.Add(valid, int64(2))
	f.Add(valid[:len(valid)-1], int64(0))
	f.Add(append(bytes.Clone(valid), valid...), int64(5))
	f.Add(controlBatch(0, 1, 0), int64(0))
	bad := bytes.Clone(valid)
	binary.BigEndian.PutUint32(bad[57:], 1<<30) // absurd record count
	binary.BigEndian.PutUint32(bad[batchCRCOff:], crc32c(bad[batchAttrsOff:]))
	f.Add(bad, int64(0))
	for _, c := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd, 7} {
		b := bytes.Clone(valid)
		b[batchAttrsOff+1] = byte(c)
		binary.BigEndian.PutUint32(b[batchCRCOff:], crc32c(b[batchAttrsOff:]))
		f.Add(b, int64(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, from int64) {
		r, next, err := firstRecord(data, from, nil)
		if next < from {
			t.Fatalf("next %d before from %d", next, from)
		}
		if r != nil {
			if err != nil {
				t.Fatalf("record and error %v", err)
			}
			if r.Offset < from || next != r.Offset+1 {
				t.Fatalf("record at %d, from %d, next %d", r.Offset, from, next)
			}
		}
	})
}

// FuzzBatchRoundTrip encodes fuzzed records and decodes them back.
func FuzzBatchRoundTrip(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), "h", []byte("hv"), false, false, int64(0))
	f.Add([]byte{}, []byte{}, "", []byte{}, true, true, int64(-5))
	f.Fuzz(func(t *testing.T, key, value []byte, hk string, hv []byte, nullKey, nullValue bool, ts int64) {
		if nullKey {
			key = nil
		} else if key == nil {
			key = []byte{}
		}
		if nullValue {
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		if hv == nil {
			hv = []byte{}
		}
		in := []*Record{{Key: key, Value: value, Headers: []Header{{hk, hv}}, Timestamp: time.UnixMilli(ts)}, {Value: value}}
		r, _, err := firstRecord(appendBatch(nil, in, time.UnixMilli(ts)), 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r, in[0]) {
			t.Fatalf("got %#v, want %#v", r, in[0])
		}
	})
}

func TestCRCs(t *testing.T) {
	for _, n := range []int{0, 1, 7, 64, 1000, 1 << 19} {
		p := bytes.Repeat([]byte{0x5a, 0x01, 0xff}, n)[:n]
		if got, want := crc32c(p), crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)); got != want {
			t.Errorf("crc32c of %d bytes: %08x, want %08x", n, got, want)
		}
		if got, want := crc32IEEE(p), crc32.ChecksumIEEE(p); got != want {
			t.Errorf("crc32 IEEE of %d bytes: %08x, want %08x", n, got, want)
		}
	}
}

var zeroTime = time.UnixMilli(0)

// fixCRC recomputes a batch's CRC after a test changed it.
func fixCRC(raw []byte) []byte {
	binary.BigEndian.PutUint32(raw[batchCRCOff:], crc32c(raw[batchAttrsOff:]))
	return raw
}
