package codec

import "testing"

type benchOrder struct {
	ID    string   `json:"id"`
	Total int      `json:"total"`
	Items []string `json:"items"`
}

// go test -run '^$' -bench . -benchmem ./codec
func BenchmarkCodecs(b *testing.B) {
	v := benchOrder{ID: "o-123456", Total: 4200, Items: []string{"book", "pen", "lamp"}}
	for _, c := range []Codec{JSON, CloudEvents{}, CloudEvents{Structured: true}} {
		h := map[string]string{}
		data, err := c.Encode(v, h)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.Name()+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Encode(v, map[string]string{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.Name()+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var out benchOrder
				hh := make(map[string]string, len(h))
				for k, v := range h {
					hh[k] = v
				}
				if err := c.Decode(data, hh, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	raw := make([]byte, 100)
	b.Run("raw/decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out []byte
			if err := Raw.Decode(raw, nil, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
