package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/daemon"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/restarter"
)

// ScaleConfig is what the many-deployments scenario measures: idle
// deployments on one `fnctl up` with its embedded broker, and a burst of
// messages to a few of many deployments, with pools that follow the work
// against fixed pools.
type ScaleConfig struct {
	// Function is the function binary; Fnctl the fnctl that runs the daemon.
	Function, Fnctl string
	// Idle is how many idle deployments the idle figure deploys; default 500.
	Idle int
	// Deployments is how many the burst scenario deploys; default 200.
	Deployments int
	// Burst deployments get BurstMessages messages each; default 4 and 250.
	Burst, BurstMessages int
	// FixedPool is the fixed pools' size the scenario compares with
	// (today's default, 1), MaxPool the bound of pools that follow the
	// work (from 0); default 1 and 8.
	FixedPool, MaxPool int
	// ColdStarts is how many idle deployments get one message each, one
	// after the other, for the cold-start latency; default 20.
	ColdStarts int
	// Window is how long idle CPU is measured; default 20s.
	Window time.Duration
	// ScaleDownAfter is the pools' quiet period; default 5s.
	ScaleDownAfter time.Duration
	// HandlerTime is how long the function waits per message (as on
	// another service) in the burst scenario; default 20ms. Without it,
	// process creation on a small machine bounds the drain whatever the
	// pool's size.
	HandlerTime time.Duration
	Progress    io.Writer
}

func (c *ScaleConfig) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Idle, 500)
	def(&c.Deployments, 200)
	def(&c.Burst, 4)
	def(&c.BurstMessages, 250)
	def(&c.FixedPool, 1)
	def(&c.MaxPool, 8)
	def(&c.ColdStarts, 20)
	if c.Window == 0 {
		c.Window = 20 * time.Second
	}
	if c.ScaleDownAfter == 0 {
		c.ScaleDownAfter = 5 * time.Second
	}
	if c.HandlerTime == 0 {
		c.HandlerTime = 20 * time.Millisecond
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// idleSettle is how long deployments are left before their idle cost is
// measured: their groups have joined and their first fetches returned.
const idleSettle = 10 * time.Second

// RunScale measures the many-deployments scenario. Every figure is from
// one daemon started for it; the baselines are the same daemon with no
// deployment, and the same scenario with fixed pools.
func RunScale(ctx context.Context, cfg ScaleConfig) (*Report, error) {
	cfg.setDefaults()
	rep := &Report{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	rep.Config.Broker = "embedded, in fnctl up"
	step := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, "bench: "+format+"\n", args...) }

	figs, err := idleCost(ctx, cfg, step)
	if err != nil {
		return nil, fmt.Errorf("idle deployments: %w", err)
	}
	rep.Figures = append(rep.Figures, figs...)
	for _, auto := range []bool{false, true} {
		figs, err := burst(ctx, cfg, auto, step)
		if err != nil {
			return nil, fmt.Errorf("burst: %w", err)
		}
		rep.Figures = append(rep.Figures, figs...)
	}
	return rep, nil
}

// idleCost deploys cfg.Idle deployments with pools from 0, each on a
// topic and group of its own, and measures the daemon while nothing is
// published, against the same daemon with none.
func idleCost(ctx context.Context, cfg ScaleConfig, step func(string, ...any)) ([]Figure, error) {
	d, err := startDaemonOn(ctx, cfg.Fnctl, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	step("idle cost: the daemon alone, %v", cfg.Window)
	time.Sleep(idleSettle)
	cpu0, err := d.cpuOver(ctx, cfg.Window)
	if err != nil {
		return nil, err
	}
	rss0, err := procRSS(d.pid)
	if err != nil {
		return nil, err
	}
	socks0 := sockets(d.pid)
	step("idle cost: deploying %d deployments, pools from 0 to %d", cfg.Idle, cfg.MaxPool)
	start := time.Now()
	if err := d.deployMany(ctx, cfg, "idle", cfg.Idle, 1, 0, cfg.MaxPool); err != nil {
		return nil, err
	}
	deployed := time.Since(start)
	step("idle cost: %d deployed in %v; measuring %v", cfg.Idle, deployed.Round(time.Second), cfg.Window)
	time.Sleep(idleSettle)
	cpu, err := d.cpuOver(ctx, cfg.Window)
	if err != nil {
		return nil, err
	}
	rss, err := procRSS(d.pid)
	if err != nil {
		return nil, err
	}
	socks := sockets(d.pid)
	n := float64(cfg.Idle)
	cpuFig := figure(fmt.Sprintf("idle: daemon CPU, %d deployments", cfg.Idle), "% of a core", []float64{cpu}).goal("<=", 5)
	cpuFig.Note = fmt.Sprintf("the daemon alone: %.2f%%", cpu0)
	memFig := figure("idle: daemon memory per deployment", "MiB", []float64{(rss - rss0) / n}).goal("<=", 0.5)
	memFig.Note = fmt.Sprintf("daemon RSS %.0f MiB, %.0f MiB alone", rss, rss0)
	return []Figure{cpuFig, memFig,
		figure("idle: sockets per deployment", "sockets", []float64{float64(socks-socks0) / n}),
		figure("idle: function processes", "processes", []float64{float64(len(children(d.pid)))}),
	}, nil
}

// burst deploys cfg.Deployments deployments, with fixed pools or pools
// from 0, measures them idle, the cold-start (or, fixed, warm) latency of
// one message to an idle deployment, and the time to drain a burst to a
// few of them.
func burst(ctx context.Context, cfg ScaleConfig, auto bool, step func(string, ...any)) ([]Figure, error) {
	mode, minPool, maxPool := fmt.Sprintf("fixed pools of %d", cfg.FixedPool), cfg.FixedPool, cfg.FixedPool
	if auto {
		mode, minPool, maxPool = fmt.Sprintf("pools from 0 to %d", cfg.MaxPool), 0, cfg.MaxPool
	}
	d, err := startDaemonOn(ctx, cfg.Fnctl, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	step("burst, %s: deploying %d deployments", mode, cfg.Deployments)
	benchLog := filepath.Join(d.state, "bench.log")
	if err := d.deployMany(ctx, cfg, "b", cfg.Deployments, 4, minPool, maxPool, "FN_BENCH_LOG="+benchLog,
		"FN_BENCH_SLEEP="+cfg.HandlerTime.String()); err != nil {
		return nil, err
	}
	time.Sleep(idleSettle)
	step("burst, %s: idle for %v", mode, cfg.Window)
	cpu, err := d.cpuOver(ctx, cfg.Window)
	if err != nil {
		return nil, err
	}
	rss, err := procRSS(d.pid)
	if err != nil {
		return nil, err
	}
	var childRSS float64
	kids := children(d.pid)
	for _, pid := range kids {
		if r, err := procRSS(pid); err == nil {
			childRSS += r
		}
	}

	step("burst, %s: one message each to %d idle deployments, one after the other", mode, cfg.ColdStarts)
	prod, err := sarama.NewSyncProducer(d.brokers, kafka.Config("microfn-bench"))
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	var lat []float64
	for i := range cfg.ColdStarts {
		name := fmt.Sprintf("b%d", cfg.Deployments-1-i)
		ms, err := firstMessage(ctx, prod, name, benchLog)
		if err != nil {
			return nil, err
		}
		lat = append(lat, ms)
	}

	step("burst, %s: %d messages each to %d deployments", mode, cfg.BurstMessages, cfg.Burst)
	peak := map[string]int{}
	var mu sync.Mutex
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			if sts, err := d.client.List(ctx); err == nil {
				mu.Lock()
				for _, s := range sts {
					peak[s.Name] = max(peak[s.Name], s.Pool)
				}
				mu.Unlock()
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	value := make([]byte, 100)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, cfg.Burst)
	for i := range cfg.Burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := fmt.Sprintf("b%d", i)
			if errs[i] = Publish(d.brokers, topic, cfg.BurstMessages, value); errs[i] == nil {
				errs[i] = d.waitCommitted(ctx, topic, topic, 4, cfg.BurstMessages, nil)
			}
		}()
	}
	wg.Wait()
	drain := time.Since(start)
	close(stopWatch)
	<-watched
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	grew := 0
	for i := range cfg.Burst {
		grew = max(grew, peak[fmt.Sprintf("b%d", i)])
	}
	out := []Figure{
		figure(fmt.Sprintf("%s: idle daemon CPU, %d deployments", mode, cfg.Deployments), "% of a core", []float64{cpu}),
		figure(fmt.Sprintf("%s: idle daemon RSS", mode), "MiB", []float64{rss}),
		figure(fmt.Sprintf("%s: idle function processes, RSS of all", mode), "MiB", []float64{childRSS}),
		percentile(fmt.Sprintf("%s: one message to an idle deployment, publish to handler start, p50", mode), lat, 50),
		percentile(fmt.Sprintf("%s: one message to an idle deployment, publish to handler start, p99", mode), lat, 99),
		figure(fmt.Sprintf("%s: burst of %d×%d messages of %v drained", mode, cfg.Burst, cfg.BurstMessages, cfg.HandlerTime), "s", []float64{drain.Seconds()}),
		figure(fmt.Sprintf("%s: largest pool in the burst", mode), "processes", []float64{float64(grew)}),
	}
	out[2].Note = fmt.Sprintf("%d processes", len(kids))
	if auto {
		step("burst, %s: waiting for the pools to shrink back to 0", mode)
		start := time.Now()
		if err := d.waitPools(ctx, cfg.Burst, 0, cfg.ScaleDownAfter*4+time.Minute); err != nil {
			return nil, err
		}
		back := figure(fmt.Sprintf("%s: burst pools back to 0 after the drain", mode), "s", []float64{time.Since(start).Seconds()})
		back.Note = fmt.Sprintf("quiet period %v", cfg.ScaleDownAfter)
		out = append(out, back)
	}
	return out, nil
}

// deployMany deploys n deployments PREFIXi on topics PREFIXi of the given
// partition count, concurrently, and waits until every one runs.
func (d *benchDaemon) deployMany(ctx context.Context, cfg ScaleConfig, prefix string, n, partitions, minPool, maxPool int, env ...string) error {
	sem := make(chan struct{}, 8)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("%s%d", prefix, i)
			if errs[i] = CreateTopic(d.brokers, name, partitions); errs[i] != nil {
				return
			}
			s := restarter.Spec{Name: name, Binary: cfg.Function, Topic: name, MinPool: minPool, MaxPool: maxPool,
				ScaleDownAfter: restarter.Duration(cfg.ScaleDownAfter), Env: env}
			_, errs[i] = d.client.Deploy(ctx, s, daemon.DeployParams{})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for deadline := time.Now().Add(5 * time.Minute); ; {
		sts, err := d.client.List(ctx)
		if err != nil {
			return err
		}
		ready := 0
		for _, s := range sts {
			if s.State == "running" && s.Warm >= minPool {
				ready++
			}
		}
		if ready >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d deployments running after 5 minutes", ready, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// cpuOver is the daemon's CPU, its children excluded, in % of a core
// over window.
func (d *benchDaemon) cpuOver(ctx context.Context, window time.Duration) (float64, error) {
	c0, err := procCPU(d.pid)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(window):
	}
	c1, err := procCPU(d.pid)
	if err != nil {
		return 0, err
	}
	return 100 * float64(c1-c0) / float64(time.Since(t0)), nil
}

// firstMessage publishes one message to the deployment (topic = name)
// and returns the ms from the publish to its handler's start, as the
// function logs it to benchLog.
func firstMessage(ctx context.Context, p sarama.SyncProducer, name, benchLog string) (float64, error) {
	before, _ := os.ReadFile(benchLog)
	t0 := time.Now()
	if _, _, err := p.SendMessage(kafka.ProducerMessage(name, []byte("k"), []byte("x"), nil)); err != nil {
		return 0, err
	}
	for deadline := time.Now().Add(time.Minute); ; {
		b, _ := os.ReadFile(benchLog)
		if len(b) > len(before) {
			sc := bufio.NewScanner(strings.NewReader(string(b[len(before):])))
			for sc.Scan() {
				var part int32
				var off, ns int64
				if _, err := fmt.Sscan(sc.Text(), &part, &off, &ns); err == nil {
					return float64(time.Unix(0, ns).Sub(t0).Microseconds()) / 1000, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s: the message's handler did not start within a minute", name)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// waitPools waits until the first n deployments (b0…) have pools of size.
func (d *benchDaemon) waitPools(ctx context.Context, n, size int, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); ; {
		sts, err := d.client.List(ctx)
		if err != nil {
			return err
		}
		ok := 0
		for _, s := range sts {
			if isBurst(s.Name, n) && s.Pool == size && s.Warm == size {
				ok++
			}
		}
		if ok == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d pools at %d after %v", ok, n, size, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func isBurst(name string, n int) bool {
	for i := range n {
		if name == fmt.Sprintf("b%d", i) {
			return true
		}
	}
	return false
}

// sockets counts a process's open sockets.
func sockets(pid int) int {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}
