package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/microfn/microfn/restarter"
)

// poolFlags are the pool's size flags of deploy and scale: --pool N fixes
// the size; --min-pool and --max-pool let it follow the work.
type poolFlags struct {
	Pool, MinPool, MaxPool int
	ScaleDownAfter         time.Duration
}

func addPoolFlags(cmd *cobra.Command, p *poolFlags, pool int) {
	f := cmd.Flags()
	f.IntVar(&p.Pool, "pool", pool, "processes to keep warm, and the most messages run at once (min = max)")
	f.IntVar(&p.MinPool, "min-pool", 0, "with --max-pool: the fewest warm processes the pool shrinks to; 0: none while idle")
	f.IntVar(&p.MaxPool, "max-pool", 0, "the most processes the pool grows to while messages wait (--min-pool defaults to 1)")
	f.DurationVar(&p.ScaleDownAfter, "scale-down-after", 0, "quiet period after which a pool above --min-pool shrinks (default 30s)")
}

// check resolves the flags into min and max, refusing what does not
// bound a pool.
func (p *poolFlags) check(cmd *cobra.Command) error {
	f := cmd.Flags()
	auto := f.Changed("min-pool") || f.Changed("max-pool")
	switch {
	case auto && f.Changed("pool"):
		return usagef("--pool and --min-pool/--max-pool exclude each other: give a fixed size or bounds")
	case f.Changed("min-pool") && !f.Changed("max-pool"):
		return usagef("--min-pool needs --max-pool")
	case !auto && p.Pool < 1:
		return usagef("--pool must be at least 1, got %d", p.Pool)
	case f.Changed("scale-down-after") && p.ScaleDownAfter <= 0:
		return usagef("--scale-down-after must be positive, got %v", p.ScaleDownAfter)
	}
	if !auto {
		p.MinPool, p.MaxPool = p.Pool, p.Pool
		return nil
	}
	if !f.Changed("min-pool") {
		p.MinPool = min(1, p.MaxPool)
	}
	if p.MaxPool < 1 {
		return usagef("--max-pool must be at least 1, got %d", p.MaxPool)
	}
	if p.MinPool < 0 || p.MinPool > p.MaxPool {
		return usagef("--min-pool must be from 0 to --max-pool (%d), got %d", p.MaxPool, p.MinPool)
	}
	p.Pool = 0
	return nil
}

// apply sets the spec's pool fields.
func (p poolFlags) apply(s *restarter.Spec) {
	s.Pool, s.MinPool, s.MaxPool = p.Pool, p.MinPool, p.MaxPool
	if p.Pool > 0 {
		s.MinPool, s.MaxPool = 0, 0
	}
	s.ScaleDownAfter = restarter.Duration(p.ScaleDownAfter)
}

// poolText is a spec's pool in words: "4", or "0-8" for one that
// follows the work.
func poolText(s restarter.Spec) string {
	s = s.WithDefaults()
	if s.MinPool == s.MaxPool {
		return fmt.Sprint(s.MaxPool)
	}
	return fmt.Sprintf("%d-%d", s.MinPool, s.MaxPool)
}
