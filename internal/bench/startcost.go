package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microfn/microfn/internal/pipe"
	"github.com/microfn/microfn/internal/runner"
)

// StartCost is the median time, over n runs one at a time, to start a
// process, hand it one message and reap it, spawned as the restarter
// spawns its functions (internal/runner). For a function built with fn
// that is its whole life under the restarter; for any other program
// (the hello-world baseline) it is start to exit. env is added to the
// environment.
func StartCost(ctx context.Context, bin string, function bool, n int, env []string, value []byte) (time.Duration, error) {
	ds := make([]time.Duration, 0, n)
	for range n {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		start := time.Now()
		if err := spawnVia(bin, function, env, value); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

// HarnessRate is the rate at which the restarter's harness (internal/runner)
// starts and reaps bin, parallel at a time: for the hello-world baseline,
// the most processes per second this machine gives a restarter.
func HarnessRate(ctx context.Context, bin string, function bool, n, parallel int, env []string, value []byte) (float64, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, parallel)
	start := time.Now()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				if err := spawnVia(bin, function, env, value); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), ctx.Err()
}

// spawnVia runs bin once through internal/runner: as a warm function
// process given one message, or as a plain program run to its exit.
func spawnVia(bin string, function bool, env []string, value []byte) error {
	cfg := runner.Config{Binary: bin, Env: append(os.Environ(), env...), Plain: !function}
	m := &pipe.Message{Topic: "bench", Value: value, Attempt: 1, Deadline: time.Now().Add(time.Minute)}
	if !function {
		_, r := runner.RunPlain(cfg, m)
		if !r.OK() {
			return fmt.Errorf("%s: %v", bin, r.Err)
		}
		return nil
	}
	p, err := runner.Start(cfg)
	if err != nil {
		return err
	}
	if err := p.Ready(); err != nil {
		return err
	}
	r := p.Run(m)
	p.Wait()
	if !r.OK() {
		return fmt.Errorf("%s: %s: %v", bin, r.Failure, r.Err)
	}
	return nil
}

// startCosts measures, per round, the start cost of the function and of
// the hello-world program one at a time, their ratio, and the hello-world
// spawn rate 2 at a time (the baseline of the restarter's throughput).
func startCosts(ctx context.Context, cfg Config, n int, value []byte) ([]Figure, []float64, error) {
	var hello, function, ratio, rate []float64
	for range cfg.Rounds {
		h, err := StartCost(ctx, cfg.Hello, false, n, nil, value)
		if err != nil {
			return nil, nil, err
		}
		f, err := StartCost(ctx, cfg.Function, true, n, runner.FunctionEnv, value)
		if err != nil {
			return nil, nil, err
		}
		r, err := HarnessRate(ctx, cfg.Hello, false, n, 2, nil, value)
		if err != nil {
			return nil, nil, err
		}
		hello, function = append(hello, ms(h)), append(function, ms(f))
		ratio, rate = append(ratio, float64(f)/float64(h)), append(rate, r)
	}
	figs := []Figure{
		figure("start, hello-world", "ms", hello),
		figure("start, function (plain go build)", "ms", function),
		figure("function / hello-world start", "ratio", ratio).goal("<=", 1.3),
		figure("hello-world spawn, 2 in parallel", "proc/s", rate),
	}
	return figs, rate, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
