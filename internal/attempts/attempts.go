// Package attempts keeps what a partition's committed offset alone cannot
// say in the metadata string of that commit, so it survives the process
// that knew it (a standalone function exits after every attempt, the
// restarter may be restarted):
//
//   - the failed-attempt counts of messages at or after the offset;
//   - the messages after the offset that are already finished (acked or
//     dead-lettered) while an earlier one was not, so a restart does not
//     run them again.
//
// The format is "fn1" followed by ";offset:failed:unixmillis" entries
// (with ":r" appended while an attempt is running) and ";d:from-to" ranges
// of finished offsets, for example "fn1;42:2:1700000000000;d:44-47". Metadata that does not start with
// "fn1" (another client's) reads as empty.
package attempts

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

const prefix = "fn1"

// MaxEntries bounds how many failure entries, and how many finished
// ranges, one metadata string keeps.
const MaxEntries = 100

// maxBytes keeps the metadata under Kafka's default limit of 4096 bytes
// (offset.metadata.max.bytes): a larger one would fail the whole commit.
const maxBytes = 4000

// Entry is the failure record of one message.
type Entry struct {
	Offset int64
	Failed int       // failed attempts so far
	Last   time.Time // when the last attempt failed, or the running one started
	// Running says an attempt after the failed ones started and has not
	// reported. A standalone run records it before it calls the handler,
	// so that a run that crashes counts as a failed attempt.
	Running bool
}

// Failures is how many attempts have failed, counting as failed a
// running attempt whose process is gone: whoever reads the entry is the
// next to try.
func (e Entry) Failures() int {
	if e.Running {
		return e.Failed + 1
	}
	return e.Failed
}

// Range is an inclusive range of finished offsets.
type Range struct{ From, To int64 }

// Encode formats failure entries and finished ranges, keeping at most
// MaxEntries of each, the lowest offsets first: what does not fit is
// forgotten, so at worst a message gets an extra attempt or runs again,
// never fewer.
func Encode(entries []Entry, done []Range) string {
	if len(entries) == 0 && len(done) == 0 {
		return ""
	}
	es := slices.Clone(entries)
	slices.SortFunc(es, func(a, b Entry) int { return cmp.Compare(a.Offset, b.Offset) })
	es = es[:min(len(es), MaxEntries)]
	ds := slices.Clone(done)
	slices.SortFunc(ds, func(a, b Range) int { return cmp.Compare(a.From, b.From) })
	ds = ds[:min(len(ds), MaxEntries)]
	var b strings.Builder
	b.WriteString(prefix)
	add := func(entry string) {
		if b.Len()+len(entry) <= maxBytes {
			b.WriteString(entry)
		}
	}
	for _, e := range es {
		entry := fmt.Sprintf(";%d:%d:%d", e.Offset, e.Failed, e.Last.UnixMilli())
		if e.Running {
			entry += ":r"
		}
		add(entry)
	}
	for _, d := range ds {
		add(fmt.Sprintf(";d:%d-%d", d.From, d.To))
	}
	return b.String()
}

// DecodeDone returns the finished ranges in metadata written by Encode.
func DecodeDone(s string) []Range {
	parts := strings.Split(s, ";")
	if parts[0] != prefix {
		return nil
	}
	var out []Range
	for _, p := range parts[1:] {
		r, ok := strings.CutPrefix(p, "d:")
		if !ok {
			continue
		}
		a, b, ok := strings.Cut(r, "-")
		from, err1 := strconv.ParseInt(a, 10, 64)
		to, err2 := strconv.ParseInt(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || from < 0 || to < from {
			return nil
		}
		out = append(out, Range{from, to})
	}
	return out
}

// Covers reports whether offset lies in one of the ranges.
func Covers(done []Range, offset int64) bool {
	for _, d := range done {
		if d.From <= offset && offset <= d.To {
			return true
		}
	}
	return false
}

// Decode parses metadata written by Encode. Foreign or damaged metadata
// yields no entries: at worst a message gets more attempts than configured,
// never fewer.
func Decode(s string) []Entry {
	parts := strings.Split(s, ";")
	if parts[0] != prefix {
		return nil
	}
	var out []Entry
	for _, p := range parts[1:] {
		if strings.HasPrefix(p, "d:") {
			continue // a finished range: DecodeDone reads those
		}
		f := strings.Split(p, ":")
		running := len(f) == 4 && f[3] == "r"
		if len(f) != 3 && !running {
			return nil
		}
		off, err1 := strconv.ParseInt(f[0], 10, 64)
		n, err2 := strconv.Atoi(f[1])
		ms, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || off < 0 || n < 0 {
			return nil
		}
		out = append(out, Entry{Offset: off, Failed: n, Last: time.UnixMilli(ms), Running: running})
	}
	return out
}

// Find returns the entry for offset, if any.
func Find(entries []Entry, offset int64) (Entry, bool) {
	for _, e := range entries {
		if e.Offset == offset {
			return e, true
		}
	}
	return Entry{}, false
}
