// Package attempts keeps the failed-attempt counts of a partition's pending
// messages in the metadata string of the partition's committed offset, so
// the counts survive the process that made them: a standalone function
// exits after every attempt, and the restarter may be restarted.
//
// The format is "fn1" followed by one ";offset:failed:unixmillis" entry per
// message, for example "fn1;42:2:1700000000000". Metadata that does not
// start with "fn1" (another client's) reads as no counts.
package attempts

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

const prefix = "fn1"

// MaxEntries bounds how many messages one metadata string tracks: Kafka
// limits offset metadata to 4096 bytes by default.
const MaxEntries = 100

// Entry is the failure record of one message.
type Entry struct {
	Offset int64
	Failed int       // failed attempts so far
	Last   time.Time // when the last attempt failed
}

// Encode formats entries, keeping the MaxEntries lowest offsets.
func Encode(entries []Entry) string {
	if len(entries) == 0 {
		return ""
	}
	es := slices.Clone(entries)
	slices.SortFunc(es, func(a, b Entry) int { return int(min(max(a.Offset-b.Offset, -1), 1)) })
	if len(es) > MaxEntries {
		es = es[:MaxEntries]
	}
	var b strings.Builder
	b.WriteString(prefix)
	for _, e := range es {
		fmt.Fprintf(&b, ";%d:%d:%d", e.Offset, e.Failed, e.Last.UnixMilli())
	}
	return b.String()
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
		f := strings.Split(p, ":")
		if len(f) != 3 {
			return nil
		}
		off, err1 := strconv.ParseInt(f[0], 10, 64)
		n, err2 := strconv.Atoi(f[1])
		ms, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || off < 0 || n < 0 {
			return nil
		}
		out = append(out, Entry{Offset: off, Failed: n, Last: time.UnixMilli(ms)})
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
