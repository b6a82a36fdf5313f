// Package backoff is microfn's one wait between tries: exponential,
// capped, and jittered, so that many clients failing at once (the
// function processes of a crash-looping deployment, standalone runs
// retrying a message, clients waiting out a broker's election) do not
// retry in step.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy doubles a wait from Min up to Max. The zero value waits nothing.
type Policy struct {
	Min, Max time.Duration
}

// Ceiling is the wait before try n+1 after n consecutive failures,
// without jitter: Min doubled n-1 times, at most Max; 0 when n < 1.
func (p Policy) Ceiling(n int) time.Duration {
	if n < 1 || p.Min <= 0 {
		return 0
	}
	d := p.Min
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, max(p.Max, p.Min))
}

// Wait is the wait after n consecutive failures: a random duration
// between half of Ceiling(n) and all of it ("equal jitter"), so waits
// still grow with n while clients that failed together spread out.
func (p Policy) Wait(n int) time.Duration {
	c := p.Ceiling(n)
	if c <= 0 {
		return 0
	}
	half := c / 2
	return half + rand.N(c-half+1)
}
