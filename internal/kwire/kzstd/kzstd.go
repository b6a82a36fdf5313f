// Package kzstd adds zstd-compressed record batches to kwire: importing it
// registers a decoder (klauspost/compress/zstd). It is a package of its
// own because klauspost/compress builds a CRC table in its package
// initialisation that adds about 0.4 ms to every process start.
package kzstd

import (
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/microfn/microfn/internal/kwire"
)

func init() { kwire.RegisterCodec(kwire.CodecZstd, decode) }

// decoder is shared: DecodeAll is safe for concurrent use. One goroutine
// and no window larger than kwire's limit.
var decoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
})

func decode(dst, src []byte, limit int) ([]byte, error) {
	d, err := decoder()
	if err != nil {
		return nil, err
	}
	out, err := d.DecodeAll(src, dst)
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, zstd.ErrDecoderSizeExceeded
	}
	return out, nil
}
