package restarter

import (
	"testing"

	"github.com/microfn/microfn/internal/kafka"
)

// Messages finished above the watermark are recorded in the commit, and a
// new owner of the partition does not run them again.
func TestFinishedAboveWatermarkSurviveAHandOver(t *testing.T) {
	ps := newPartState("t", 0, kafka.Commit{Offset: -1}, 10, func() int64 { return 16 })
	for off := int64(10); off < 16; off++ {
		ps.add(off)
	}
	for _, off := range []int64{12, 13, 15} {
		ps.done(off)
	}
	c, ok := ps.commit()
	if !ok || c.Offset != 10 || c.Metadata != "fn1;d:12-13;d:15-15" {
		t.Fatalf("commit %+v (%v)", c, ok)
	}
	next := newPartState("t", 0, c, c.Offset, func() int64 { return 16 })
	for off, want := range map[int64]bool{10: false, 11: false, 12: true, 13: true, 14: false, 15: true} {
		if _, finished := next.add(off); finished != want {
			t.Errorf("offset %d finished = %v, want %v", off, finished, want)
		}
	}
}

// After a hole (the committed offset was past the log's end and the
// consumer reset below it) the commit's metadata speaks of records that
// are gone: the new log's records at those offsets run, with fresh
// attempt counts.
func TestMetadataIgnoredAfterAReset(t *testing.T) {
	c := kafka.Commit{Offset: 20, Metadata: "fn1;3:2:1700000000000;d:4-6"}
	ps := newPartState("t", 0, c, 0, func() int64 { return 8 })
	for off := int64(0); off < 8; off++ {
		if prev, finished := ps.add(off); finished || prev.Failed != 0 {
			t.Errorf("offset %d: finished %v, failed %d before; want a fresh message", off, finished, prev.Failed)
		}
	}
}
