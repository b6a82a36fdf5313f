package restarter

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/pipe"
)

// fakeProc is a process that is ready, or dies before it is.
type fakeProc struct {
	crash bool
	done  chan struct{}
	once  sync.Once
}

func newFakeProc(crash bool) *fakeProc { return &fakeProc{crash: crash, done: make(chan struct{})} }

func (f *fakeProc) Ready() error {
	if f.crash {
		f.exit()
		return errors.New("function exited before taking a message (exit code 3): boom")
	}
	return nil
}
func (f *fakeProc) Run(*pipe.Message) delivery.Result { f.exit(); return delivery.Result{} }
func (f *fakeProc) SetLabel(string)                   {}
func (f *fakeProc) Wait() *delivery.Exit              { <-f.done; return &delivery.Exit{} }
func (f *fakeProc) Stop()                             { f.exit() }
func (f *fakeProc) Done() <-chan struct{}             { return f.done }
func (f *fakeProc) Pid() int                          { return 1 }
func (f *fakeProc) exit()                             { f.once.Do(func() { close(f.done) }) }

// fakeClock is a clock whose timers fire when the test says so.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	waits  chan time.Duration
	timers []chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1e9, 0), waits: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.timers = append(c.timers, ch)
	c.mu.Unlock()
	c.waits <- d
	return ch
}

// advance moves time on by d and fires the timers.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	timers := c.timers
	c.timers = nil
	c.mu.Unlock()
	for _, t := range timers {
		t <- c.now
	}
}

func (c *fakeClock) nextWait(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.waits:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the pool did not wait for its backoff within 10s")
		return 0
	}
}

func TestPoolCrashLoopBacksOffDoublingThenRecovers(t *testing.T) {
	clk := newFakeClock()
	var mu sync.Mutex
	starts := 0
	crashes := 4
	p := newPool(fixedPool(1), false, func() (process, error) {
		mu.Lock()
		defer mu.Unlock()
		starts++
		return newFakeProc(starts <= crashes), nil
	}, clk, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.run(ctx)
	defer p.stop()

	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond} {
		if got := clk.nextWait(t); got > want || got < want/2 {
			t.Fatalf("backoff after crash %d = %v, want %v less at most half of it (jitter)", i+1, got, want)
		}
		if warm, _, state, reason := p.state(); warm != 0 || state != "paused" || !strings.Contains(reason, "boom") {
			t.Fatalf("after crash %d: warm %d, state %q, reason %q; want paused with the last line of output", i+1, warm, state, reason)
		}
		clk.advance(time.Hour)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		warm, restarts, state, reason := p.state()
		if warm == 1 && state == "running" && reason == "" {
			if restarts != int64(crashes) {
				t.Fatalf("restarts %d, want %d", restarts, crashes)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no warm process 10s after the crashes stopped: warm %d state %q", warm, state)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCrashBackoffIsCapped(t *testing.T) {
	for crashes, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		9: 25600 * time.Millisecond, 10: 30 * time.Second, 1000: 30 * time.Second} {
		if got := crashBackoff.Ceiling(crashes); got != want {
			t.Errorf("crash backoff after %d crashes at most %v, want %v", crashes, got, want)
		}
	}
}

func TestPoolTakeGivesUpWhenThePartitionGoes(t *testing.T) {
	p := newPool(fixedPool(1), false, func() (process, error) { return newFakeProc(true), nil }, newFakeClock(), slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	gone := false
	got := make(chan process)
	go func() { got <- p.take(func() bool { mu.Lock(); defer mu.Unlock(); return gone }, 0) }()
	mu.Lock()
	gone = true
	mu.Unlock()
	p.wake()
	select {
	case pr := <-got:
		if pr != nil {
			t.Fatal("take returned a process for a revoked partition")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("take still waiting 5s after its partition went")
	}
}

// waitPool waits until cond holds of the pool, or fails with what.
func waitPool(t *testing.T, p *pool, what string, cond func(p *pool) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		ok := cond(p)
		p.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool: %s: not within 10s (size %d, warm %d, busy %d, peak %d, since %v, now %v)", what, p.target, len(p.warm), p.busy, p.peak, p.since, p.clock.Now())
		}
		time.Sleep(time.Millisecond)
	}
}

// A pool of 1 runs one message at a time: the replacement started when a
// process is taken waits warm until that message is finished. (fnctl ls
// once showed more messages in flight than the pool's size.)
func TestPoolRunsNoMoreThanItsSizeAtOnce(t *testing.T) {
	p := newPool(fixedPool(1), false, func() (process, error) { return newFakeProc(false), nil }, newFakeClock(), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.run(ctx)
	defer p.stop()
	never := func() bool { return false }
	if p.take(never, 0) == nil {
		t.Fatal("no process from a warm pool")
	}
	waitPool(t, p, "replacement warm", func(p *pool) bool { return len(p.warm) == 1 })
	if pr := p.take(func() bool { return true }, 0); pr != nil {
		t.Fatal("a pool of 1 handed out a second process while the first message was still in flight")
	}
}

func TestPoolGrowsForWaitingMessagesAndShrinksWhenQuiet(t *testing.T) {
	clk := newFakeClock()
	p := newPool(poolSize{min: 0, max: 4, quiet: time.Second}, false, func() (process, error) { return newFakeProc(false), nil },
		clk, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.run(ctx)
	defer p.stop()
	never := func() bool { return false }

	// A cold start: the first message finds no process, and two more
	// runnable ones wait behind it.
	if p.take(never, 2) == nil {
		t.Fatal("no process for the first message")
	}
	if sz := p.sizing(); sz.size != 3 || sz.coldStarts != 1 || !strings.Contains(sz.change, "grew to 3") {
		t.Fatalf("after a message with 2 waiting behind it: size %d, cold starts %d, change %q; want 3, 1, grew", sz.size, sz.coldStarts, sz.change)
	}
	for range 2 {
		if p.take(never, 0) == nil {
			t.Fatal("no process for a waiting message")
		}
	}
	if got := clk.nextWait(t); got != time.Second {
		t.Fatalf("quiet period armed for %v, want 1s", got)
	}
	for range 3 {
		p.release()
	}
	// The first quiet period saw 3 busy: no change. The second saw none.
	clk.advance(time.Second)
	if got := clk.nextWait(t); got != time.Second {
		t.Fatalf("second quiet period armed for %v, want 1s", got)
	}
	if sz := p.sizing(); sz.size != 3 {
		t.Fatalf("size %d after a quiet period with 3 busy, want 3", sz.size)
	}
	clk.advance(time.Second)
	waitPool(t, p, "shrunk to 0 with no warm process", func(p *pool) bool { return p.target == 0 && len(p.warm) == 0 })
	if sz := p.sizing(); !strings.Contains(sz.change, "shrank to 0") {
		t.Fatalf("change %q, want shrank to 0", sz.change)
	}
	// And back from 0.
	if p.take(never, 0) == nil {
		t.Fatal("no process for a message after shrinking to 0")
	}
	if sz := p.sizing(); sz.size != 1 || sz.coldStarts != 2 {
		t.Fatalf("size %d, cold starts %d after a message to an empty pool; want 1, 2", sz.size, sz.coldStarts)
	}
}

func TestPoolShrinksToWhatWasBusy(t *testing.T) {
	clk := newFakeClock()
	p := newPool(poolSize{min: 1, max: 8, quiet: time.Second}, false, func() (process, error) { return newFakeProc(false), nil },
		clk, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.run(ctx)
	defer p.stop()
	never := func() bool { return false }
	for i := range 6 {
		if p.take(never, 5-i) == nil {
			t.Fatal("no process")
		}
	}
	if sz := p.sizing(); sz.size != 6 {
		t.Fatalf("size %d with 6 wanted at once, want 6", sz.size)
	}
	clk.nextWait(t)
	for range 4 {
		p.release()
	}
	clk.advance(time.Second) // the period with 6 busy ends
	clk.nextWait(t)
	clk.advance(time.Second) // 2 busy throughout
	waitPool(t, p, "shrunk to the 2 busy, 2 warm", func(p *pool) bool { return p.target == 2 && len(p.warm) == 2 })
}

func TestPoolDoesNotGrowInACrashLoop(t *testing.T) {
	clk := newFakeClock()
	var mu sync.Mutex
	starts := 0
	p := newPool(poolSize{min: 1, max: 4, quiet: time.Minute}, false, func() (process, error) {
		mu.Lock()
		defer mu.Unlock()
		starts++
		return newFakeProc(starts == 1), nil
	}, clk, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.run(ctx)
	defer p.stop()
	if got, want := clk.nextWait(t), crashBackoff.Ceiling(1); got > want || got < want/2 {
		t.Fatalf("backoff %v after the first crash, want %v less at most half of it (jitter)", got, want)
	}
	got := make(chan process)
	go func() { got <- p.take(func() bool { return false }, 5) }()
	waitPool(t, p, "a message waiting", func(p *pool) bool { return p.waiting == 6 })
	if sz := p.sizing(); sz.size != 1 {
		t.Fatalf("a crash-looping pool grew to %d for waiting messages, want 1", sz.size)
	}
	clk.advance(time.Hour)
	select {
	case pr := <-got:
		if pr == nil {
			t.Fatal("no process once the crashes stopped")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no process 10s after the crashes stopped")
	}
}
