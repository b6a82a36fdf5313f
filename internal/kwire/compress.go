package kwire

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// Codec is a record batch compression codec, as numbered in a batch's
// attributes.
type Codec int8

const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec %d", int8(c))
}

// hint says how to add a codec that is not built in.
func (c Codec) hint() string {
	if c == CodecZstd {
		return `a function decodes it when it imports github.com/microfn/microfn/fn/zstd, left out by default because its package initialisation adds about 0.4 ms to every process start`
	}
	return "no decoder is known"
}

// Decoder decompresses src, appending the result to dst. It must fail
// rather than produce more than limit bytes.
type Decoder func(dst, src []byte, limit int) ([]byte, error)

// gzip, lz4 and snappy are built in: their packages cost nothing
// measurable at process start. zstd's (klauspost/compress) does, so it is
// registered by importing kwire/kzstd.
var (
	codecsMu sync.RWMutex
	codecs   = [...]Decoder{CodecGzip: gunzip, CodecSnappy: unsnappy, CodecLZ4: unlz4, CodecZstd: nil}
)

// RegisterCodec makes kwire decode batches compressed with c using d,
// replacing a decoder registered before. Call it from an init function.
func RegisterCodec(c Codec, d Decoder) {
	if c <= CodecNone || int(c) >= len(codecs) {
		panic(fmt.Sprintf("kwire: RegisterCodec(%d): no such codec", c))
	}
	codecsMu.Lock()
	codecs[c] = d
	codecsMu.Unlock()
}

func decompress(c Codec, src []byte) ([]byte, error) {
	var d Decoder
	if c > CodecNone && int(c) < len(codecs) {
		codecsMu.RLock()
		d = codecs[c]
		codecsMu.RUnlock()
	}
	if d == nil {
		return nil, &CodecError{Codec: c}
	}
	out, err := d(nil, src, maxDecompressed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, c, err)
	}
	return out, nil
}

var errTooLarge = errors.New("decompresses to more than the limit")

// readLimited appends r's bytes to dst, failing beyond limit.
func readLimited(dst []byte, r io.Reader, limit int) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	n, err := buf.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(limit) {
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}

// gunzip reads gzip members (RFC 1952). kwire parses the framing around
// compress/flate itself: compress/gzip links hash/crc32, whose package
// initialisation builds a table every process would pay for.
func gunzip(dst, src []byte, limit int) ([]byte, error) {
	for first := true; first || len(src) > 0; first = false {
		if len(src) < 10 || src[0] != 0x1f || src[1] != 0x8b || src[2] != 8 {
			return nil, errors.New("gzip: bad header")
		}
		flags := src[3]
		rest := src[10:]
		if flags&0x04 != 0 { // FEXTRA
			if len(rest) < 2 || len(rest)-2 < int(binary.LittleEndian.Uint16(rest)) {
				return nil, errors.New("gzip: bad extra field")
			}
			rest = rest[2+int(binary.LittleEndian.Uint16(rest)):]
		}
		for _, bit := range []byte{0x08, 0x10} { // FNAME, FCOMMENT: NUL-terminated
			if flags&bit != 0 {
				i := bytes.IndexByte(rest, 0)
				if i < 0 {
					return nil, errors.New("gzip: bad header string")
				}
				rest = rest[i+1:]
			}
		}
		if flags&0x02 != 0 { // FHCRC
			if len(rest) < 2 {
				return nil, errors.New("gzip: bad header CRC")
			}
			rest = rest[2:]
		}
		// flate reads a bytes.Reader byte by byte, so what is left after
		// the deflate stream is the member's trailer.
		r := bytes.NewReader(rest)
		start := len(dst)
		var err error
		if dst, err = readLimited(dst, flate.NewReader(r), limit-start); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		rest = rest[len(rest)-r.Len():]
		if len(rest) < 8 {
			return nil, errors.New("gzip: truncated trailer")
		}
		out := dst[start:]
		if binary.LittleEndian.Uint32(rest) != crc32IEEE(out) || binary.LittleEndian.Uint32(rest[4:]) != uint32(len(out)) {
			return nil, errors.New("gzip: checksum mismatch")
		}
		src = rest[8:]
	}
	return dst, nil
}

// unlz4 reads the LZ4 frame format, which Kafka uses.
func unlz4(dst, src []byte, limit int) ([]byte, error) {
	return readLimited(dst, lz4.NewReader(bytes.NewReader(src)), limit)
}

// xerialMagic starts snappy data in the framing of the Java snappy
// library (xerial), which Kafka's Java clients write: a 16-byte header,
// then blocks, each prefixed by its big-endian 32-bit length. Other
// clients write one raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

func unsnappy(dst, src []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return snappyBlock(dst, src, limit)
	}
	if len(src) < 16 {
		return nil, errors.New("truncated xerial header")
	}
	src = src[16:]
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, errors.New("truncated xerial block length")
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return nil, errors.New("truncated xerial block")
		}
		var err error
		if dst, err = snappyBlock(dst, src[:n], limit); err != nil {
			return nil, err
		}
		src = src[n:]
	}
	return dst, nil
}

// snappyBlock decodes one block of the snappy format: the decoded length
// as an unsigned varint, then literals and back-references, appending to
// dst (whose total length stays within limit).
func snappyBlock(dst, src []byte, limit int) ([]byte, error) {
	n, k := binary.Uvarint(src)
	if k <= 0 {
		return nil, errors.New("snappy: bad length")
	}
	if n > uint64(limit-len(dst)) {
		return nil, errTooLarge
	}
	src = src[k:]
	base := len(dst)
	want := base + int(n)
	dst = slices.Grow(dst, int(n))
	for len(src) > 0 {
		tag := src[0]
		var length, offset int
		switch tag & 3 {
		case 0: // literal
			length = int(tag >> 2)
			src = src[1:]
			if length >= 60 {
				extra := length - 59
				if len(src) < extra {
					return nil, errors.New("snappy: truncated literal length")
				}
				length = 0
				for i := extra - 1; i >= 0; i-- {
					length = length<<8 | int(src[i])
				}
				src = src[extra:]
			}
			length++
			if length <= 0 || length > len(src) || len(dst)+length > want {
				return nil, errors.New("snappy: bad literal")
			}
			dst = append(dst, src[:length]...)
			src = src[length:]
			continue
		case 1:
			if len(src) < 2 {
				return nil, errors.New("snappy: truncated copy")
			}
			length = 4 + int(tag>>2&7)
			offset = int(tag&0xe0)<<3 | int(src[1])
			src = src[2:]
		case 2:
			if len(src) < 3 {
				return nil, errors.New("snappy: truncated copy")
			}
			length = 1 + int(tag>>2)
			offset = int(binary.LittleEndian.Uint16(src[1:]))
			src = src[3:]
		case 3:
			if len(src) < 5 {
				return nil, errors.New("snappy: truncated copy")
			}
			length = 1 + int(tag>>2)
			offset = int(binary.LittleEndian.Uint32(src[1:]))
			src = src[5:]
		}
		if offset <= 0 || offset > len(dst)-base || len(dst)+length > want {
			return nil, errors.New("snappy: bad copy")
		}
		// Copies may overlap their own output (a run): copy byte by byte.
		from := len(dst) - offset
		for i := range length {
			dst = append(dst, dst[from+i])
		}
	}
	if len(dst) != want {
		return nil, errors.New("snappy: decoded length differs from the header")
	}
	return dst, nil
}
