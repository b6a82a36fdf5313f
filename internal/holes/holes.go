// Package holes decides whether a partition's log still holds a consumer
// group's committed position. When it does not, records the group never
// processed are gone, and a Kafka client resets to its reset policy
// without a word (sarama's Consumer.Group.ResetInvalidOffsets): every host
// of a function (the restarter, standalone mode) compares the committed
// offset with the log's offsets itself, through Check, and reports the
// hole before it goes on.
package holes

import (
	"fmt"
	"strings"
)

// Position is what the group and the log say about one partition.
type Position struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is the group's committed offset, the next one to
	// process; -1 when the group has none.
	Committed int64 `json:"committed"`
	// LogStart is the log's first offset; LogEnd the offset after its
	// last (the high-water mark).
	LogStart int64 `json:"log_start"`
	LogEnd   int64 `json:"log_end"`
}

// Hole is a partition whose log no longer holds the committed position.
type Hole struct {
	Position
	// Reason says which way the log moved past the committed offset,
	// and what can cause that.
	Reason string `json:"reason"`
}

// Check returns the hole at p, if there is one: the log ends below the
// committed offset (the broker lost records, or the topic was deleted and
// created again), or starts above it (retention or DeleteRecords removed
// records the group had not processed).
func Check(p Position) (Hole, bool) {
	switch {
	case p.Committed < 0:
		return Hole{}, false
	case p.LogEnd < p.Committed:
		return Hole{p, "the log ends below the committed offset: the broker lost records, or the topic was deleted and created again"}, true
	case p.LogStart > p.Committed:
		return Hole{p, fmt.Sprintf("the log starts above the committed offset: %d records the group had not processed were removed (retention or DeleteRecords)", p.LogStart-p.Committed)}, true
	}
	return Hole{}, false
}

// String describes the hole in one line.
func (h Hole) String() string {
	return fmt.Sprintf("%s/%d: committed offset %d, log offsets %d to %d: %s",
		h.Topic, h.Partition, h.Committed, h.LogStart, h.LogEnd, h.Reason)
}

// Describe describes holes in one line.
func Describe(hs []Hole) string {
	ds := make([]string, len(hs))
	for i, h := range hs {
		ds[i] = h.String()
	}
	return strings.Join(ds, "; ")
}
