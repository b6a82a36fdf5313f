package holes

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name                  string
		committed, start, end int64
		hole                  bool
		says                  string
	}{
		{"no commit", -1, 0, 10, false, ""},
		{"no commit, log trimmed", -1, 5, 10, false, ""},
		{"caught up", 10, 0, 10, false, ""},
		{"behind", 4, 0, 10, false, ""},
		{"at the log start", 5, 5, 10, false, ""},
		{"empty log at the committed offset", 7, 7, 7, false, ""},
		{"log ends below", 10, 0, 4, true, "ends below"},
		{"topic re-created, empty", 10, 0, 0, true, "created again"},
		{"log starts above", 3, 8, 12, true, "5 records the group had not processed"},
		{"everything removed", 3, 12, 12, true, "starts above"},
	}
	for _, c := range cases {
		h, hole := Check(Position{Topic: "t", Partition: 2, Committed: c.committed, LogStart: c.start, LogEnd: c.end})
		if hole != c.hole {
			t.Errorf("%s: hole %v, want %v", c.name, hole, c.hole)
			continue
		}
		if !hole {
			continue
		}
		s := h.String()
		if !strings.Contains(s, c.says) || !strings.HasPrefix(s, "t/2: committed offset ") {
			t.Errorf("%s: %q does not say %q", c.name, s, c.says)
		}
	}
}
