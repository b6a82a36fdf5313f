package restarter

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/microfn/microfn/internal/pipe"
)

// pool keeps a deployment's warm processes: started ahead of time, each
// blocked waiting for its one message. A process taken for a message is
// replaced at once, off the message's path. A process that exits before
// it is ready is restarted with capped exponential backoff; meanwhile the
// deployment dispatches nothing (its messages wait, none is skipped).
type pool struct {
	d *deployment

	mu       sync.Mutex
	cond     *sync.Cond
	target   int
	warm     []*proc
	starting int
	plain    int // running plain processes
	stopped  bool

	restarts  int64
	crashes   int // consecutive processes that died before ready
	retryAt   time.Time
	reason    string
	everReady bool
	kick      chan struct{}
}

func newPool(d *deployment) *pool {
	p := &pool{d: d, target: d.spec.Pool, kick: make(chan struct{}, 1)}
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
		var extra []*proc
		for len(p.warm) > p.target {
			extra = append(extra, p.warm[len(p.warm)-1])
			p.warm = p.warm[:len(p.warm)-1]
		}
		need := !p.d.spec.Plain && len(p.warm)+p.starting < p.target
		delay := time.Until(p.retryAt)
		if need && delay <= 0 {
			p.starting++
		}
		p.mu.Unlock()
		for _, x := range extra {
			go x.stop(KillGrace)
		}
		if need && delay <= 0 {
			go p.start()
			continue
		}
		var timer <-chan time.Time
		if need {
			timer = time.After(delay)
		}
		select {
		case <-p.kick:
		case <-timer:
		case <-ctx.Done():
			return
		}
	}
}

// start starts one process and waits for it to announce it is ready.
func (p *pool) start() {
	pr, err := startProc(p.d.spec, p.d.env, p.d.logw, nil)
	if err == nil {
		typ, _, rerr := pipe.ReadFrame(pr.out)
		if rerr == nil && typ == pipe.TypeReady {
			p.ready(pr)
			return
		}
		pr.closePipes()
		<-pr.done
		_, _, text := pr.exitDescription()
		err = fmt.Errorf("function exited before taking a message (%s)%s", text, lastLine(pr.tail.String()))
	}
	p.failed(err)
}

func (p *pool) ready(pr *proc) {
	p.mu.Lock()
	p.starting--
	if p.stopped {
		p.mu.Unlock()
		pr.stop(KillGrace)
		return
	}
	p.warm = append(p.warm, pr)
	p.crashes, p.reason, p.everReady = 0, "", true
	p.mu.Unlock()
	p.cond.Broadcast()
	// A warm process that dies while idle is replaced.
	go func() {
		<-pr.done
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
	backoff := min(100*time.Millisecond<<min(p.crashes-1, 10), 30*time.Second)
	p.retryAt = time.Now().Add(backoff)
	p.reason = fmt.Sprintf("%v; restarting in %v", err, backoff.Round(time.Millisecond))
	p.mu.Unlock()
	p.d.log.Warn("function process failed to start", "err", err, "backoff", backoff)
	p.wake()
}

// take returns a warm process for a message of ps, waiting for one; nil
// when ps is revoked or the pool stops first.
func (p *pool) take(ps *partState) *proc {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.warm) == 0 && !p.stopped && !ps.isRevoked() {
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

// acquirePlain waits for room for one more plain process.
func (p *pool) acquirePlain(ps *partState) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.plain >= p.target && !p.stopped && !ps.isRevoked() {
		p.cond.Wait()
	}
	if p.plain >= p.target {
		return false
	}
	p.plain++
	return true
}

func (p *pool) releasePlain() {
	p.mu.Lock()
	p.plain--
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
			pr.stop(KillGrace)
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
	case !p.everReady && !p.d.spec.Plain:
		state = "starting"
	default:
		state = "running"
	}
	return len(p.warm), p.restarts, state, reason
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return ": " + s
}
