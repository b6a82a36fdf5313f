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
	p := newPool(1, false, func() (process, error) {
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
		if got := clk.nextWait(t); got != want {
			t.Fatalf("backoff after crash %d = %v, want %v", i+1, got, want)
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
		9: 25600 * time.Millisecond, 10: crashBackoffMax, 1000: crashBackoffMax} {
		if got := crashBackoff(crashes); got != want {
			t.Errorf("crashBackoff(%d) = %v, want %v", crashes, got, want)
		}
	}
}

func TestPoolTakeGivesUpWhenThePartitionGoes(t *testing.T) {
	p := newPool(1, false, func() (process, error) { return newFakeProc(true), nil }, newFakeClock(), slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	gone := false
	got := make(chan process)
	go func() { got <- p.take(func() bool { mu.Lock(); defer mu.Unlock(); return gone }) }()
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
