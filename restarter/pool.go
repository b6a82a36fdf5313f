package restarter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/microfn/microfn/internal/backoff"
	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/pipe"
)

// process is a started function process as the pool and the dispatch use
// it; *runner.Proc is one.
type process interface {
	// Ready waits for the process to say it waits for its message.
	Ready() error
	// Run hands it its message and returns how the attempt ended.
	Run(m *pipe.Message) delivery.Result
	SetLabel(label string)
	// Wait waits for it to exit.
	Wait() *delivery.Exit
	// Stop makes an idle process exit.
	Stop()
	Done() <-chan struct{}
	Pid() int
}

// clock is the time the pool's crash-loop backoff reads.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// crashBackoff is the crash loop's: a process that dies before it is
// ready is replaced after 100ms, doubling per consecutive crash up to
// 30s, jittered.
var crashBackoff = backoff.Policy{Min: 100 * time.Millisecond, Max: 30 * time.Second}

// pool keeps a deployment's warm processes: started ahead of time, each
// blocked waiting for its one message. A process taken for a message is
// replaced at once, off the message's path. A process that exits before
// it is ready is restarted with capped exponential backoff; meanwhile the
// deployment dispatches nothing (its messages wait, none is skipped).
// For plain executables, which start per message, the pool only bounds
// how many run at once.
//
// The pool's size (target) is both how many processes it keeps warm and
// how many messages may be in processes at once: a message holds its
// place from take (or acquire) until release. The size stays within
// [min, max]. It grows, at once, when a runnable message finds every
// place busy or no warm process: to what is busy plus what waits, so a
// lane that must wait for its own key counts for nothing. It shrinks when
// a quiet period passes with fewer busy: to the most that were busy at
// once meanwhile, down to min. A pool in a crash loop does not grow. A
// pool at its minimum keeps no timer, so an idle deployment costs nothing
// here.
type pool struct {
	spawn func() (process, error)
	plain bool
	clock clock
	log   *slog.Logger

	mu       sync.Mutex
	cond     *sync.Cond
	min, max int
	quiet    time.Duration // the period after which a pool above min shrinks
	target   int
	warm     []process
	starting int
	busy     int // places taken by messages, warm or plain
	waiting  int // messages waiting for a place: the taker and those behind it
	stopped  bool

	// The quiet period under way: since when, and the most busy at once.
	since time.Time
	peak  int

	// Why the size last changed, and when.
	change    string
	changedAt time.Time
	// coldStarts counts messages that found the pool empty (size 0).
	coldStarts int64

	restarts  int64
	crashes   int // consecutive processes that died before ready
	retryAt   time.Time
	reason    string
	everReady bool
	kick      chan struct{}
}

// poolSize is a pool's bounds and quiet period.
type poolSize struct {
	min, max int
	quiet    time.Duration
}

// fixedPool is a pool of n that never changes by itself.
func fixedPool(n int) poolSize { return poolSize{min: n, max: n} }

func newPool(size poolSize, plain bool, spawn func() (process, error), clk clock, log *slog.Logger) *pool {
	p := &pool{spawn: spawn, plain: plain, clock: clk, log: log, kick: make(chan struct{}, 1)}
	p.cond = sync.NewCond(&p.mu)
	p.min, p.max, p.quiet, p.target = size.min, size.max, size.quiet, size.min
	p.since, p.changedAt = clk.Now(), clk.Now()
	p.change = fmt.Sprintf("started at %d", p.target)
	return p
}

// kickSpawner asks the run loop to look at the pool again.
func (p *pool) kickSpawner() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// wake kicks the run loop and every waiting dispatch.
func (p *pool) wake() {
	p.kickSpawner()
	p.cond.Broadcast()
}

// run keeps the pool at its target size, and shrinks it after quiet
// periods, until ctx ends.
func (p *pool) run(ctx context.Context) {
	var shrink, backoff <-chan time.Time
	var shrinkAt, backoffAt time.Time // what they were armed for
	for {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		now := p.clock.Now()
		if p.target > p.min && p.quiet > 0 && !now.Before(p.since.Add(p.quiet)) {
			p.shrink(now)
		}
		var extra []process
		for len(p.warm) > p.target {
			extra = append(extra, p.warm[len(p.warm)-1])
			p.warm = p.warm[:len(p.warm)-1]
		}
		need := !p.plain && len(p.warm)+p.starting < p.target
		retryAt := p.retryAt
		delay := retryAt.Sub(now)
		if need && delay <= 0 {
			p.starting++
		}
		var at time.Time
		if p.target > p.min && p.quiet > 0 {
			at = p.since.Add(p.quiet)
		}
		p.mu.Unlock()
		for _, x := range extra {
			go x.Stop()
		}
		if need && delay <= 0 {
			go p.start()
			continue
		}
		// Each timer is armed once for its time, not again on every
		// kick: an idle pool at its minimum has no timer at all.
		if at != shrinkAt {
			shrink, shrinkAt = nil, at
			if !at.IsZero() {
				shrink = p.clock.After(at.Sub(now))
			}
		}
		if !need {
			retryAt = time.Time{}
		}
		if retryAt != backoffAt {
			backoff, backoffAt = nil, retryAt
			if need {
				backoff = p.clock.After(delay)
			}
		}
		select {
		case <-p.kick:
		case <-backoff:
			backoffAt = time.Time{}
		case <-shrink:
			shrinkAt = time.Time{}
		case <-ctx.Done():
			return
		}
	}
}

// shrink ends a quiet period: the size becomes the most that were busy at
// once in it (at least min). Called with mu held.
func (p *pool) shrink(now time.Time) {
	n := max(p.min, p.peak, p.busy+p.waiting)
	if n < p.target {
		p.resizeLocked(n, fmt.Sprintf("shrank to %d: at most %d busy for %v", n, max(p.peak, p.busy), p.quiet), now)
	}
	p.since, p.peak = now, p.busy
}

// resizeLocked sets the size and says why. Called with mu held.
func (p *pool) resizeLocked(n int, why string, now time.Time) {
	p.target, p.change, p.changedAt = n, why, now
	p.log.Info("pool resized", "size", n, "why", why)
}

// grow grows the pool for n messages that want a place now (the one
// asking and the runnable ones behind it); a crash-looping pool only to
// one process. Called with mu held.
func (p *pool) grow(n int) {
	want := min(p.max, p.busy+n)
	if p.crashes > 0 {
		want = min(p.max, max(p.target, 1)) // one, to find out whether it still crashes
	}
	if want <= p.target {
		return
	}
	now := p.clock.Now()
	p.resizeLocked(want, fmt.Sprintf("grew to %d: %d busy, %d waiting", want, p.busy, n), now)
	p.since, p.peak = now, max(p.peak, p.busy)
	p.kickSpawner()
}

// start starts one process and waits for it to say it is ready.
func (p *pool) start() {
	pr, err := p.spawn()
	if err == nil {
		if err = pr.Ready(); err == nil {
			p.ready(pr)
			return
		}
	}
	p.failed(err)
}

func (p *pool) ready(pr process) {
	p.mu.Lock()
	p.starting--
	if p.stopped || len(p.warm) >= p.target {
		// Stopped, or shrunk while it started.
		p.crashes, p.reason, p.everReady = 0, "", true
		p.mu.Unlock()
		pr.Stop()
		return
	}
	p.warm = append(p.warm, pr)
	p.crashes, p.reason, p.everReady = 0, "", true
	p.mu.Unlock()
	p.cond.Broadcast()
	// A warm process that dies while idle is replaced.
	go func() {
		<-pr.Done()
		p.mu.Lock()
		for i, w := range p.warm {
			if w == pr {
				p.warm = append(p.warm[:i], p.warm[i+1:]...)
				p.restarts++
				break
			}
		}
		p.mu.Unlock()
		p.wake()
	}()
}

func (p *pool) failed(err error) {
	p.mu.Lock()
	p.starting--
	p.restarts++
	p.crashes++
	wait := crashBackoff.Wait(p.crashes)
	p.retryAt = p.clock.Now().Add(wait)
	p.reason = fmt.Sprintf("%v; restarting in %v", err, wait.Round(time.Millisecond))
	p.mu.Unlock()
	p.log.Warn("function process failed to start", "err", err, "backoff", wait)
	p.wake()
}

// take returns a warm process once the pool has a place for one more
// message, growing the pool for it and for waiting (runnable messages
// behind it); nil when gone() becomes true (the message's partition was
// revoked) or the pool stops first. The place is held until release.
func (p *pool) take(gone func() bool, waiting int) process {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.target == 0 {
		p.coldStarts++
	}
	p.waiting = 1 + waiting
	for (len(p.warm) == 0 || p.busy >= p.target) && !p.stopped && !gone() {
		// Again after every wake: the bounds may have changed, or a crash
		// loop ended.
		p.grow(p.waiting)
		p.cond.Wait()
	}
	p.waiting = 0
	if len(p.warm) == 0 || p.busy >= p.target {
		return nil
	}
	pr := p.warm[0]
	p.warm = p.warm[1:]
	p.hold()
	p.kickSpawner() // start its replacement
	return pr
}

// acquire waits for a place for one more plain process, growing the pool
// as take does; false when gone() becomes true or the pool stops first.
func (p *pool) acquire(gone func() bool, waiting int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waiting = 1 + waiting
	for p.busy >= p.target && !p.stopped && !gone() {
		p.grow(p.waiting)
		p.cond.Wait()
	}
	p.waiting = 0
	if p.busy >= p.target {
		return false
	}
	p.hold()
	return true
}

// hold takes a place. Called with mu held.
func (p *pool) hold() {
	p.busy++
	p.peak = max(p.peak, p.busy)
}

// release gives back a place taken by take or acquire.
func (p *pool) release() {
	p.mu.Lock()
	p.busy--
	p.mu.Unlock()
	p.cond.Broadcast()
}

// resize sets the pool's bounds; the size moves into them.
func (p *pool) resize(minSize, maxSize int) {
	p.mu.Lock()
	p.min, p.max = minSize, maxSize
	if n := min(max(p.target, minSize), maxSize); n != p.target {
		p.resizeLocked(n, fmt.Sprintf("scaled to %d-%d by hand", minSize, maxSize), p.clock.Now())
	}
	p.since, p.peak = p.clock.Now(), p.busy
	p.mu.Unlock()
	p.wake()
}

// sizing is the pool's size, bounds and why the size last changed.
type sizing struct {
	size, min, max int
	change         string
	changedAt      time.Time
	busy           int
	coldStarts     int64
}

func (p *pool) sizing() sizing {
	p.mu.Lock()
	defer p.mu.Unlock()
	return sizing{size: p.target, min: p.min, max: p.max, change: p.change, changedAt: p.changedAt, busy: p.busy, coldStarts: p.coldStarts}
}

// stop makes the idle processes exit and waits for them.
func (p *pool) stop() {
	p.mu.Lock()
	p.stopped = true
	idle := p.warm
	p.warm = nil
	p.mu.Unlock()
	p.wake()
	var wg sync.WaitGroup
	for _, pr := range idle {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr.Stop()
		}()
	}
	wg.Wait()
}

func (p *pool) state() (warm int, restarts int64, state, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.stopped:
		state = "stopped"
	case p.crashes > 0 && len(p.warm) == 0:
		state, reason = "paused", p.reason
	case !p.everReady && !p.plain && p.target > 0:
		state = "starting"
	default:
		state = "running"
	}
	return len(p.warm), p.restarts, state, reason
}
