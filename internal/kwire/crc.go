package kwire

import "sync"

// CRCs with tables built on first use. hash/crc32 builds its IEEE table in
// its package initialisation and, on first use of Castagnoli, hardware
// tables that take about 0.3 ms: more than a one-shot process spends
// checksumming its few batches with a plain table.

// crc32c is the CRC-32C (Castagnoli) of record batches.
func crc32c(p []byte) uint32 { return crcUpdate(castagnoliTable(), p) }

// crc32IEEE is the CRC-32 of gzip members.
func crc32IEEE(p []byte) uint32 { return crcUpdate(ieeeTable(), p) }

var (
	castagnoliTable = sync.OnceValue(func() *[256]uint32 { return crcTable(0x82f63b78) })
	ieeeTable       = sync.OnceValue(func() *[256]uint32 { return crcTable(0xedb88320) })
)

// crcTable is the byte-at-a-time table of a reflected CRC-32 polynomial.
func crcTable(poly uint32) *[256]uint32 {
	var t [256]uint32
	for i := range t {
		c := uint32(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ poly
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return &t
}

func crcUpdate(t *[256]uint32, p []byte) uint32 {
	crc := ^uint32(0)
	for _, v := range p {
		crc = t[byte(crc)^v] ^ crc>>8
	}
	return ^crc
}
