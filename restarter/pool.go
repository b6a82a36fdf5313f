package restarter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

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

// Crash-loop backoff: a process that dies before it is ready is replaced
// after crashBackoffMin, doubling per consecutive crash up to
// crashBackoffMax.
const (
	crashBackoffMin = 100 * time.Millisecond
	crashBackoffMax = 30 * time.Second
)

func crashBackoff(crashes int) time.Duration {
	return min(crashBackoffMin<<min(crashes-1, 10), crashBackoffMax)
}

// pool keeps a deployment's warm processes: started ahead of time, each
// blocked waiting for its one message. A process taken for a message is
// replaced at once, off the message's path. A process that exits before
// it is ready is restarted with capped exponential backoff; meanwhile the
// deployment dispatches nothing (its messages wait, none is skipped).
// For plain executables, which start per message, the pool only bounds
// how many run at once.
type pool struct {
	spawn func() (process, error)
	plain bool
	clock clock
	log   *slog.Logger

	mu       sync.Mutex
	cond     *sync.Cond
	target   int
	warm     []process
	starting int
	running  int // plain processes running
	stopped  bool

	restarts  int64
	crashes   int // consecutive processes that died before ready
	retryAt   time.Time
	reason    string
	everReady bool
	kick      chan struct{}
}

func newPool(target int, plain bool, spawn func() (process, error), clk clock, log *slog.Logger) *pool {
	p := &pool{spawn: spawn, plain: plain, clock: clk, log: log, target: target, kick: make(chan struct{}, 1)}
	p.cond = sync.NewCond(&p.mu)
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

// run keeps the pool at its target size until ctx ends.
func (p *pool) run(ctx context.Context) {
	for {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		var extra []process
		for len(p.warm) > p.target {
			extra = append(extra, p.warm[len(p.warm)-1])
			p.warm = p.warm[:len(p.warm)-1]
		}
		need := !p.plain && len(p.warm)+p.starting < p.target
		delay := p.retryAt.Sub(p.clock.Now())
		if need && delay <= 0 {
			p.starting++
		}
		p.mu.Unlock()
		for _, x := range extra {
			go x.Stop()
		}
		if need && delay <= 0 {
			go p.start()
			continue
		}
		var timer <-chan time.Time
		if need {
			timer = p.clock.After(delay)
		}
		select {
		case <-p.kick:
		case <-timer:
		case <-ctx.Done():
			return
		}
	}
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
	if p.stopped {
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
	backoff := crashBackoff(p.crashes)
	p.retryAt = p.clock.Now().Add(backoff)
	p.reason = fmt.Sprintf("%v; restarting in %v", err, backoff.Round(time.Millisecond))
	p.mu.Unlock()
	p.log.Warn("function process failed to start", "err", err, "backoff", backoff)
	p.wake()
}

// take returns a warm process, waiting for one; nil when gone() becomes
// true (the message's partition was revoked) or the pool stops first.
func (p *pool) take(gone func() bool) process {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.warm) == 0 && !p.stopped && !gone() {
		p.cond.Wait()
	}
	if len(p.warm) == 0 {
		return nil
	}
	pr := p.warm[0]
	p.warm = p.warm[1:]
	p.kickSpawner() // start its replacement
	return pr
}

// acquire waits for room for one more plain process; false when gone()
// becomes true or the pool stops first.
func (p *pool) acquire(gone func() bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.running >= p.target && !p.stopped && !gone() {
		p.cond.Wait()
	}
	if p.running >= p.target {
		return false
	}
	p.running++
	return true
}

func (p *pool) release() {
	p.mu.Lock()
	p.running--
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *pool) resize(n int) {
	p.mu.Lock()
	p.target = n
	p.mu.Unlock()
	p.wake()
}

func (p *pool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
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
	case !p.everReady && !p.plain:
		state = "starting"
	default:
		state = "running"
	}
	return len(p.warm), p.restarts, state, reason
}
