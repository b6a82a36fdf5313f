package kwire

import (
	"bytes"
	"compress/gzip"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/pierrec/lz4/v4"
)

// payloads are inputs with runs (snappy copies overlapping their output),
// random bytes (literals) and sizes around snappy's 64 KiB blocks.
func payloads() [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 100_000)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	return [][]byte{
		{},
		[]byte("a"),
		[]byte(strings.Repeat("ab", 1000)),
		bytes.Repeat([]byte{0}, 70_000),
		random,
		[]byte(strings.Repeat("the quick brown fox ", 5000) + string(random[:5000])),
	}
}

func TestSnappy(t *testing.T) {
	for i, p := range payloads() {
		for name, enc := range map[string][]byte{
			"block":         snappy.Encode(nil, p),
			"xerial":        xerial.Encode(nil, p),
			"xerial better": xerial.EncodeBetter(nil, p),
		} {
			got, err := decompress(CodecSnappy, enc)
			if err != nil || !bytes.Equal(got, p) {
				t.Errorf("payload %d %s: %d bytes, err %v; want %d bytes", i, name, len(got), err, len(p))
			}
		}
	}
}

// FuzzSnappy compares kwire's snappy decoder with klauspost's on any
// input: both accept it and agree, or kwire refuses it.
func FuzzSnappy(f *testing.F) {
	for _, p := range payloads()[:4] {
		f.Add(snappy.Encode(nil, p))
		f.Add(xerial.Encode(nil, p))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, src []byte) {
		got, err := unsnappy(nil, src, 1<<20)
		if err != nil {
			return
		}
		want, werr := xerial.Decode(src)
		if werr != nil {
			t.Fatalf("kwire decoded what klauspost refuses (%v)", werr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("kwire %x, klauspost %x", got, want)
		}
	})
}

func TestGzip(t *testing.T) {
	for i, p := range payloads() {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Name, w.Comment, w.Extra = "name", "comment", []byte("extra")
		w.Write(p)
		w.Close()
		// A second member, as concatenated gzip files have.
		w2 := gzip.NewWriter(&b)
		w2.Write([]byte("second"))
		w2.Close()
		got, err := decompress(CodecGzip, b.Bytes())
		if err != nil || !bytes.Equal(got, append(bytes.Clone(p), "second"...)) {
			t.Errorf("payload %d: %d bytes, err %v", i, len(got), err)
		}
		corrupt := bytes.Clone(b.Bytes())
		corrupt[len(corrupt)-20] ^= 0xff // inside the second member's trailer or data
		if _, err := decompress(CodecGzip, corrupt); err == nil {
			t.Errorf("payload %d: corrupt gzip accepted", i)
		}
	}
}

func TestLZ4(t *testing.T) {
	for i, p := range payloads() {
		var b bytes.Buffer
		w := lz4.NewWriter(&b)
		w.Write(p)
		w.Close()
		got, err := decompress(CodecLZ4, b.Bytes())
		if err != nil || !bytes.Equal(got, p) {
			t.Errorf("payload %d: %d bytes, err %v", i, len(got), err)
		}
	}
}

// TestDecompressLimit: a batch that inflates beyond the limit is refused.
func TestDecompressLimit(t *testing.T) {
	big := bytes.Repeat([]byte{0}, 1<<20)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(big)
	w.Close()
	if _, err := gunzip(nil, gz.Bytes(), 1000); err == nil {
		t.Error("gzip beyond the limit accepted")
	}
	if _, err := unsnappy(nil, snappy.Encode(nil, big), 1000); !errors.Is(err, errTooLarge) {
		t.Errorf("snappy beyond the limit: %v", err)
	}
}

// TestZstdNotLinked: without kwire/kzstd, a zstd batch is one clear error
// naming the codec and the import that adds it.
func TestZstdNotLinked(t *testing.T) {
	raw := appendBatch(nil, sampleRecords(), zeroTime)
	raw[batchAttrsOff+1] = byte(CodecZstd)
	raw = fixCRC(raw)
	_, _, err := firstRecord(raw, 0, nil)
	var ce *CodecError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCodec) || ce.Codec != CodecZstd {
		t.Fatalf("got %v, want a CodecError for zstd", err)
	}
	for _, want := range []string{"zstd", "microfn/fn/zstd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %q", err, want)
		}
	}
}
