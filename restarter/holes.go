package restarter

import (
	"slices"
	"sync"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/holes"
	"github.com/microfn/microfn/internal/kafka"
)

// holeWatch is what a deployment knows about holes in its partitions'
// logs (see the holes package).
type holeWatch struct {
	mu sync.Mutex
	// committed is the last offset this deployment committed, per
	// partition: a deleted topic takes the group's commits with it, and
	// then only this remembers where the group was.
	committed map[int32]int64
	found     []holes.Hole // the latest per partition
	count     int64
}

// checkHoles compares, at the start of a group session, the committed
// offset of each claimed partition with the partition's log. sarama
// resets an offset out of the log's range to the oldest record without a
// word, so a hole is reported here before consuming goes on from there:
// one error line, and the deployment turns degraded.
func (d *deployment) checkHoles(sess sarama.ConsumerGroupSession) {
	parts := sess.Claims()[d.spec.Topic]
	if len(parts) == 0 {
		return
	}
	pos, err := kafka.Positions(d.offsetClient(), d.spec.Group, d.spec.Topic, parts)
	if err != nil {
		d.log.Warn("cannot check the partitions' logs for holes", "err", err)
		return
	}
	w := &d.holes
	var found []holes.Hole
	w.mu.Lock()
	for _, p := range pos {
		if c, ok := w.committed[p.Partition]; ok && p.Committed < 0 {
			p.Committed = c
		}
		if h, ok := holes.Check(p); ok {
			found = append(found, h)
			w.found = slices.DeleteFunc(w.found, func(o holes.Hole) bool { return o.Partition == h.Partition })
			w.found = append(w.found, h)
			w.count++
		}
	}
	slices.SortFunc(w.found, func(a, b holes.Hole) int { return int(a.Partition - b.Partition) })
	w.mu.Unlock()
	if len(found) > 0 {
		d.log.Error("records the group had not processed are gone; going on from the oldest record",
			"topic", d.spec.Topic, "group", d.spec.Group, "holes", holes.Describe(found))
	}
}

// noteCommitted remembers commits that succeeded.
func (w *holeWatch) noteCommitted(cs []kafka.Commit) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed == nil {
		w.committed = map[int32]int64{}
	}
	for _, c := range cs {
		w.committed[c.Partition] = c.Offset
	}
}

// apply adds the holes found to s: a deployment that was running (or
// starting) is degraded from its first hole until it is deployed again.
func (w *holeWatch) apply(s *Status) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s.Holes, s.HolesFound = slices.Clone(w.found), w.count
	if len(w.found) > 0 && (s.State == "running" || s.State == "starting") {
		s.State, s.Reason = "degraded", "hole in "+holes.Describe(w.found)
	}
}
