package kwire

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Record is one Kafka record.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil is a null key, distinct from an empty one
	Value     []byte // nil is a null value (a tombstone), distinct from an empty one
	Headers   []Header
	// Timestamp is the record's create time, or the time the broker
	// appended it for a topic with log-append timestamps. Produce uses the
	// current time when it is zero.
	Timestamp time.Time
}

// Header is a record header. Keys may repeat; order is kept.
type Header struct {
	Key   string
	Value []byte // nil is a null value
}

// Layout of a record batch (magic 2): the fixed header, then the records.
const (
	batchHeaderLen  = 61
	batchLengthOff  = 8  // int32: bytes after this field
	batchMagicOff   = 16 // int8: 2
	batchCRCOff     = 17 // uint32: CRC-32C of everything after it
	batchAttrsOff   = 21 // int16
	batchFirstAfter = 12 // bytes before the length-counted part
)

// Batch attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// maxDecompressed bounds a batch's decompressed records, so a corrupt or
// hostile batch cannot exhaust memory.
const maxDecompressed = 256 << 20

// batch is one record batch as fetched.
type batch struct {
	baseOffset    int64
	attrs         int16
	lastOffset    int64
	baseTimestamp int64
	maxTimestamp  int64
	producerID    int64
	count         int32
	raw           []byte // the whole batch
}

// nextBatch splits the first batch off data. It returns ok false when data
// holds no complete batch: a fetch response may end with a partial one.
func nextBatch(data []byte) (b batch, rest []byte, ok bool, err error) {
	if len(data) < batchFirstAfter {
		return b, nil, false, nil
	}
	length := int32(binary.BigEndian.Uint32(data[batchLengthOff:]))
	if len(data) > batchMagicOff && data[batchMagicOff] != 2 {
		return b, nil, false, fmt.Errorf("%w: record format v%d (from before Kafka 0.11) is not supported", ErrCorrupt, data[batchMagicOff])
	}
	if length < batchHeaderLen-batchFirstAfter {
		return b, nil, false, fmt.Errorf("%w: record batch length %d", ErrCorrupt, length)
	}
	end := batchFirstAfter + int(length)
	if len(data) < end {
		return b, nil, false, nil
	}
	raw := data[:end]
	b = batch{
		baseOffset:    int64(binary.BigEndian.Uint64(raw)),
		attrs:         int16(binary.BigEndian.Uint16(raw[batchAttrsOff:])),
		lastOffset:    int64(binary.BigEndian.Uint64(raw)) + int64(int32(binary.BigEndian.Uint32(raw[23:]))),
		baseTimestamp: int64(binary.BigEndian.Uint64(raw[27:])),
		maxTimestamp:  int64(binary.BigEndian.Uint64(raw[35:])),
		producerID:    int64(binary.BigEndian.Uint64(raw[43:])),
		count:         int32(binary.BigEndian.Uint32(raw[57:])),
		raw:           raw,
	}
	return b, data[end:], true, nil
}

// records checks the batch's CRC, decompresses it and decodes its records
// (topic and partition left empty).
func (b batch) records() ([]*Record, error) {
	if want, got := binary.BigEndian.Uint32(b.raw[batchCRCOff:]), crc32c(b.raw[batchAttrsOff:]); want != got {
		return nil, fmt.Errorf("%w: record batch at offset %d: CRC %08x, computed %08x", ErrCorrupt, b.baseOffset, want, got)
	}
	data := b.raw[batchHeaderLen:]
	if c := Codec(b.attrs & attrCodecMask); c != CodecNone {
		var err error
		if data, err = decompress(c, data); err != nil {
			return nil, fmt.Errorf("record batch at offset %d: %w", b.baseOffset, err)
		}
	}
	if b.count < 0 || int(b.count) > len(data) {
		return nil, fmt.Errorf("%w: record batch at offset %d claims %d records in %d bytes", ErrCorrupt, b.baseOffset, b.count, len(data))
	}
	recs := make([]*Record, 0, b.count)
	for range b.count {
		r, rest, err := decodeRecord(data)
		if err != nil {
			return nil, fmt.Errorf("%w: record batch at offset %d: %v", ErrCorrupt, b.baseOffset, err)
		}
		data = rest
		ts := b.baseTimestamp + r.tsDelta
		if b.attrs&attrLogAppendTime != 0 {
			ts = b.maxTimestamp
		}
		r.Record.Offset = b.baseOffset + r.offsetDelta
		r.Record.Timestamp = time.UnixMilli(ts)
		recs = append(recs, &r.Record)
	}
	return recs, nil
}

type decoded struct {
	Record
	tsDelta     int64
	offsetDelta int64
}

// decodeRecord decodes one record: a length, then attributes, timestamp
// and offset deltas, key, value and headers, the integers as zig-zag
// varints.
func decodeRecord(data []byte) (decoded, []byte, error) {
	var r decoded
	length, n := binary.Varint(data)
	if n <= 0 || length < 0 || int64(len(data)-n) < length {
		return r, nil, fmt.Errorf("record length")
	}
	rest := data[n+int(length):]
	d := reader{b: data[n : n+int(length)]}
	d.byte() // attributes: unused
	r.tsDelta = d.varint()
	r.offsetDelta = d.varint()
	r.Key = d.bytes()
	r.Value = d.bytes()
	nh := d.varint()
	if nh < 0 || nh > int64(len(d.b)) {
		return r, nil, fmt.Errorf("header count %d", nh)
	}
	if nh > 0 {
		r.Headers = make([]Header, 0, nh)
	}
	for range nh {
		k := d.bytes()
		r.Headers = append(r.Headers, Header{Key: string(k), Value: d.bytes()})
	}
	if d.err != nil {
		return r, nil, d.err
	}
	if len(d.b) != 0 {
		return r, nil, fmt.Errorf("%d bytes left after a record", len(d.b))
	}
	return r, rest, nil
}

// reader decodes a record's fields, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (d *reader) byte() byte {
	if len(d.b) < 1 {
		d.fail("truncated record")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *reader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes reads a length-prefixed byte string; length -1 is null (nil).
func (d *reader) bytes() []byte {
	n := d.varint()
	if d.err != nil || n == -1 {
		return nil
	}
	if n < -1 || n > int64(len(d.b)) {
		d.fail("bad length")
		return nil
	}
	v := d.b[:n:n]
	if v == nil {
		v = []byte{}
	}
	d.b = d.b[n:]
	return v
}

func (d *reader) fail(msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s", msg)
	}
	d.b = nil
}

// controlType is the type of a control record (0 abort, 1 commit), from
// its key: a version and a type, both int16.
func controlType(r *Record) int16 {
	if len(r.Key) < 4 {
		return -1
	}
	return int16(binary.BigEndian.Uint16(r.Key[2:]))
}

// appendBatch appends an uncompressed, non-transactional record batch
// holding recs, with the current time for records without a timestamp.
func appendBatch(dst []byte, recs []*Record, now time.Time) []byte {
	first, maxTS := int64(-1), int64(-1)
	ts := make([]int64, len(recs))
	for i, r := range recs {
		ts[i] = now.UnixMilli()
		if !r.Timestamp.IsZero() {
			ts[i] = r.Timestamp.UnixMilli()
		}
		if i == 0 {
			first = ts[i]
		}
		maxTS = max(maxTS, ts[i])
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, 0)                   // base offset: the broker assigns
	dst = binary.BigEndian.AppendUint32(dst, 0)                   // length, set below
	dst = binary.BigEndian.AppendUint32(dst, 0xffffffff)          // partition leader epoch
	dst = append(dst, 2)                                          // magic
	dst = binary.BigEndian.AppendUint32(dst, 0)                   // CRC, set below
	dst = binary.BigEndian.AppendUint16(dst, 0)                   // attributes: no compression, create time
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(recs)-1)) // last offset delta
	dst = binary.BigEndian.AppendUint64(dst, uint64(first))       // base timestamp
	dst = binary.BigEndian.AppendUint64(dst, uint64(maxTS))       // max timestamp
	dst = binary.BigEndian.AppendUint64(dst, 0xffffffffffffffff)  // producer id: none
	dst = binary.BigEndian.AppendUint16(dst, 0xffff)              // producer epoch
	dst = binary.BigEndian.AppendUint32(dst, 0xffffffff)          // base sequence
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(recs)))   // record count
	var body []byte
	for i, r := range recs {
		body = body[:0]
		body = append(body, 0) // attributes
		body = binary.AppendVarint(body, ts[i]-first)
		body = binary.AppendVarint(body, int64(i))
		body = appendVarBytes(body, r.Key)
		body = appendVarBytes(body, r.Value)
		body = binary.AppendVarint(body, int64(len(r.Headers)))
		for _, h := range r.Headers {
			body = binary.AppendVarint(body, int64(len(h.Key)))
			body = append(body, h.Key...)
			body = appendVarBytes(body, h.Value)
		}
		dst = binary.AppendVarint(dst, int64(len(body)))
		dst = append(dst, body...)
	}
	b := dst[start:]
	binary.BigEndian.PutUint32(b[batchLengthOff:], uint32(len(b)-batchFirstAfter))
	binary.BigEndian.PutUint32(b[batchCRCOff:], crc32c(b[batchAttrsOff:]))
	return dst
}

func appendVarBytes(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}
