package pipe

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// benchMessages are a typical small record (10-byte key, 100-byte value,
// 3 headers) and a large one (64 KiB value, the size of a Linux pipe
// buffer).
var benchMessages = []struct {
	name string
	m    *Message
}{
	{"small", &Message{
		Topic: "orders.v1", Partition: 7, Offset: 123456789,
		Key: bytes.Repeat([]byte("k"), 10), Value: bytes.Repeat([]byte("v"), 100),
		Headers:   []Header{{"trace-id", "4bf92f3577b34da6"}, {"content-type", "application/json"}, {"source", "checkout"}},
		Timestamp: time.Unix(1700000000, 123), Attempt: 1, Deadline: time.Unix(1700000030, 0),
	}},
	{"64KiB", &Message{
		Topic: "blobs", Partition: 0, Offset: 42,
		Key: []byte("blob-00001"), Value: bytes.Repeat([]byte{0xa5}, 64<<10),
		Timestamp: time.Unix(1700000000, 0), Attempt: 1,
	}},
}

func BenchmarkEncodeMessage(b *testing.B) {
	for _, bm := range benchMessages {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(EncodeMessage(bm.m))))
			for b.Loop() {
				EncodeMessage(bm.m)
			}
		})
	}
}

func BenchmarkDecodeMessage(b *testing.B) {
	for _, bm := range benchMessages {
		b.Run(bm.name, func(b *testing.B) {
			body := body(b, TypeMessage, EncodeMessage(bm.m))
			b.ReportAllocs() // no SetBytes: Key and Value alias the body, nothing is copied
			for b.Loop() {
				if _, err := DecodeMessage(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRoundTripPipe measures the path a message takes to a function
// process: write the frame into a pipe, read and decode it on the other
// end. The writer runs in its own goroutine because a 64 KiB frame does
// not fit the pipe buffer; it writes as fast as the reader drains.
func BenchmarkRoundTripPipe(b *testing.B) {
	for _, bm := range benchMessages {
		b.Run(bm.name, func(b *testing.B) {
			r, w, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			frame := EncodeMessage(bm.m)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					if _, err := w.Write(frame); err != nil {
						return
					}
				}
			}()
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				typ, body, err := ReadFrame(r)
				if err != nil || typ != TypeMessage {
					b.Fatalf("ReadFrame = %q, %v", typ, err)
				}
				if _, err := DecodeMessage(body); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			r.Close() // the writer's next write fails with EPIPE and it returns
			<-done
		})
	}
}
