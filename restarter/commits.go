package restarter

import (
	"log/slog"
	"sync"
	"time"

	"github.com/microfn/microfn/internal/kafka"
)

// commitLinger is how long a moved watermark waits for others to share
// its commit.
const commitLinger = 2 * time.Millisecond

// generation is the group membership a commit is made under: Kafka
// refuses a commit from a member that no longer owns the partition.
type generation struct {
	id     int32
	member string
}

// committer commits a deployment's partition watermarks: as soon as one
// moves (asked with soon), again after a failed commit, and on demand
// (commit), one commit at a time, so commits coalesce under load and a
// commit read earlier is never sent after a later one. Committing promptly
// bounds what a crash of the restarter repeats to about the messages in
// flight. An idle deployment has nothing to commit, and its committer no
// timer: with hundreds of deployments, a tick each would be most of what
// idleness costs.
type committer struct {
	interval time.Duration // after a failed commit, before the next try
	linger   time.Duration
	kick     chan struct{}
	mu       sync.Mutex
	// send commits offsets as a member of gen.
	send func(gen generation, cs []kafka.Commit) error
	log  *slog.Logger
}

func newCommitter(interval time.Duration, send func(generation, []kafka.Commit) error, log *slog.Logger) *committer {
	return &committer{interval: interval, linger: commitLinger, kick: make(chan struct{}, 1), send: send, log: log}
}

// soon asks the loop to commit now.
func (c *committer) soon() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// run commits on every kick, and retries a failed commit every interval,
// until stop is closed. current says the membership and the partitions it
// holds; ok is false between memberships.
func (c *committer) run(stop <-chan struct{}, current func() (gen generation, parts []*partState, ok bool)) {
	var retry <-chan time.Time
	for {
		select {
		case <-retry:
		case <-c.kick:
			// Linger briefly so messages finishing together share a commit.
			time.Sleep(c.linger)
		case <-stop:
			return
		}
		retry = nil
		if gen, parts, ok := current(); ok && !c.commit(gen, parts...) {
			retry = time.After(c.interval)
		}
	}
}

// commit sends the watermarks of parts that changed since their last
// commit, as a member of gen; false when the commit failed.
func (c *committer) commit(gen generation, parts ...*partState) bool {
	// One commit at a time, its watermarks read under the same lock.
	c.mu.Lock()
	defer c.mu.Unlock()
	var cs []kafka.Commit
	var owners []*partState
	for _, ps := range parts {
		if cm, ok := ps.commit(); ok {
			cs = append(cs, cm)
			owners = append(owners, ps)
		}
	}
	if len(cs) == 0 {
		return true
	}
	if err := c.send(gen, cs); err != nil {
		c.log.Warn("commit", "err", err)
		return false
	}
	for i, ps := range owners {
		ps.committedAt(cs[i])
	}
	return true
}
