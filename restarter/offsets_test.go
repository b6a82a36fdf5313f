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
