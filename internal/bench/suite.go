package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/broker"
	"github.com/microfn/microfn/fn"
	"github.com/microfn/microfn/internal/daemon"
	"github.com/microfn/microfn/internal/fnproto"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/restarter"
)

// Config is what `fnctl bench` measures and how.
type Config struct {
	// Function is the function binary; Standalone, when set, is run
	// standalone (the same binary, usually).
	Function, Standalone string
	// Hello is a hello-world program, the baseline of the start cost.
	Hello string
	// Fnctl is the fnctl executable that runs the daemon.
	Fnctl string
	// Brokers to use; empty starts the embedded broker in this process.
	Brokers []string
	// Kafka is how to connect to Brokers (TLS, SASL); nil is plaintext.
	// KafkaEnv is the same as FN_* variables, for the daemon and the
	// standalone runs.
	Kafka      *kafka.Conn
	KafkaEnv   []string
	Messages   int
	Payload    int
	Pool       int
	Partitions int
	Order      restarter.Order
	Rounds     int
	// Progress receives one line per step; nil discards.
	Progress io.Writer
}

func (c *Config) setDefaults() {
	if c.Messages == 0 {
		c.Messages = 600
	}
	if c.Payload == 0 {
		c.Payload = 100
	}
	if c.Pool == 0 {
		c.Pool = 8
	}
	if c.Partitions == 0 {
		c.Partitions = 4
	}
	if c.Order == "" {
		c.Order = restarter.OrderKey
	}
	if c.Rounds == 0 {
		c.Rounds = 3
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Figure is one measured quantity: the median of the rounds, with their
// minimum and maximum.
type Figure struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// Goal is the target, e.g. ">= 0.9"; empty when there is none.
	Goal string `json:"goal,omitempty"`
	// Met says whether the median meets the goal.
	Met  *bool  `json:"met,omitempty"`
	Note string `json:"note,omitempty"`
}

// Report is the result of a bench run.
type Report struct {
	Figures []Figure `json:"figures"`
	CPUs    int      `json:"cpus"`
	Go      string   `json:"go"`
	Config  struct {
		Messages   int    `json:"messages"`
		Payload    int    `json:"payload_bytes"`
		Pool       int    `json:"pool"`
		Partitions int    `json:"partitions"`
		Order      string `json:"order"`
		Rounds     int    `json:"rounds"`
		Broker     string `json:"broker"`
	} `json:"config"`
}

func figure(name, unit string, samples []float64) Figure {
	s := slices.Clone(samples)
	slices.Sort(s)
	f := Figure{Name: name, Unit: unit}
	if len(s) == 0 {
		return f
	}
	f.Min, f.Max = s[0], s[len(s)-1]
	if len(s)%2 == 1 {
		f.Median = s[len(s)/2]
	} else {
		f.Median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return f
}

func (f Figure) goal(op string, v float64) Figure {
	f.Goal = fmt.Sprintf("%s %g", op, v)
	met := f.Median >= v
	if op == "<=" {
		met = f.Median <= v
	}
	f.Met = &met
	return f
}

// Run measures everything, each figure against its baseline in the same run.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	rep := &Report{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	rep.Config.Messages, rep.Config.Payload, rep.Config.Pool = cfg.Messages, cfg.Payload, cfg.Pool
	rep.Config.Partitions, rep.Config.Order, rep.Config.Rounds = cfg.Partitions, string(cfg.Order), cfg.Rounds
	step := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, "bench: "+format+"\n", args...) }

	rep.Config.Broker = "external"
	if len(cfg.Brokers) == 0 {
		e, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: "127.0.0.1:0", Partitions: cfg.Partitions})
		if err != nil {
			return nil, err
		}
		defer e.Close()
		cfg.Brokers = []string{e.Addr()}
		rep.Config.Broker = "embedded"
	}
	value := make([]byte, cfg.Payload)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}

	// 1. spawn: the physical limit of one process per message.
	step("spawn rate of %s, 2 and 1 at a time", filepath.Base(cfg.Function))
	spawnN := max(cfg.Messages/3, 50)
	var spawn2, spawn1, spawnCPU []float64
	for range cfg.Rounds {
		r2, c2, err := spawnRate(ctx, cfg.Function, spawnN, 2, value)
		if err != nil {
			return nil, fmt.Errorf("spawn: %w", err)
		}
		r1, err := SpawnRate(ctx, cfg.Function, spawnN/2, 1, value)
		if err != nil {
			return nil, fmt.Errorf("spawn: %w", err)
		}
		spawn2, spawn1 = append(spawn2, r2), append(spawn1, r1)
		spawnCPU = append(spawnCPU, float64(c2.Microseconds()))
	}
	rep.Figures = append(rep.Figures, figure("spawn, 2 in parallel", "proc/s", spawn2), figure("spawn, 1 at a time", "proc/s", spawn1))

	// 1b. start cost against a hello-world, both spawned the restarter's way.
	var helloRate []float64
	if cfg.Hello != "" {
		step("start cost of %s against a hello-world program", filepath.Base(cfg.Function))
		figs, rates, err := startCosts(ctx, cfg, spawnN, value)
		if err != nil {
			return nil, fmt.Errorf("start cost: %w", err)
		}
		rep.Figures, helloRate = append(rep.Figures, figs...), rates
	}

	// 2, 3, 6: the restarter daemon as a separate process.
	d, err := startDaemon(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	step("restarter throughput: %d messages, pool %d, %d partitions, order %s", cfg.Messages, cfg.Pool, cfg.Partitions, cfg.Order)
	var thr, ratio, cpu []float64
	for i := range cfg.Rounds {
		r, cpuPerMsg, err := d.throughput(ctx, cfg, fmt.Sprintf("thr%d", i), value)
		if err != nil {
			return nil, fmt.Errorf("restarter throughput: %w", err)
		}
		thr, cpu = append(thr, r), append(cpu, cpuPerMsg)
		ratio = append(ratio, r/spawn2[i])
	}
	rep.Figures = append(rep.Figures,
		figure("restarter, end to end", "msg/s", thr),
		figure("restarter / spawn", "ratio", ratio).goal(">=", 0.9))
	if len(helloRate) > 0 {
		var hr []float64
		for i := range thr {
			hr = append(hr, thr[i]/helloRate[i])
		}
		rep.Figures = append(rep.Figures, figure("restarter / hello-world spawn", "ratio", hr).goal(">=", 0.9))
	}

	step("latency at half of the measured capacity")
	capacity := figure("", "", thr).Median
	lat, err := d.latency(ctx, cfg, capacity/2, value)
	if err != nil {
		return nil, fmt.Errorf("latency: %w", err)
	}
	rep.Figures = append(rep.Figures, lat...)

	// 4. standalone one-shot runs in a loop, as micro run -r did.
	if cfg.Standalone != "" {
		step("standalone one-shot runs")
		var sa []float64
		for i := range cfg.Rounds {
			r, err := standaloneRate(ctx, cfg, fmt.Sprintf("sa%d", i), value)
			if err != nil {
				return nil, fmt.Errorf("standalone: %w", err)
			}
			sa = append(sa, r)
		}
		rep.Figures = append(rep.Figures, figure("standalone, restarted in a loop", "msg/s", sa))
	}

	// 5. fn.Serve against a raw watermill-kafka subscriber.
	step("fn.Serve against a raw watermill-kafka subscriber")
	var serve, raw, eratio []float64
	for i := range cfg.Rounds {
		n := cfg.Messages * 4
		s, r, err := embeddedRates(ctx, cfg, fmt.Sprintf("emb%d", i), n, value)
		if err != nil {
			return nil, fmt.Errorf("embedded: %w", err)
		}
		serve, raw, eratio = append(serve, s), append(raw, r), append(eratio, s/r)
	}
	rep.Figures = append(rep.Figures,
		figure("fn.Serve", "msg/s", serve),
		figure("raw watermill-kafka subscriber", "msg/s", raw),
		figure("fn.Serve / raw subscriber", "ratio", eratio).goal(">=", 0.8))

	// 6. the embedded broker's data directory, without and with --sync.
	if rep.Config.Broker == "embedded" {
		step("embedded broker on disk: produce and commit, without and with --sync")
		n := max(cfg.Messages/2, 100)
		var plain, synced, sratio []float64
		for range cfg.Rounds {
			p, err := DiskWriteRate(ctx, n, false, value)
			if err != nil {
				return nil, fmt.Errorf("broker on disk: %w", err)
			}
			s, err := DiskWriteRate(ctx, n, true, value)
			if err != nil {
				return nil, fmt.Errorf("broker on disk with --sync: %w", err)
			}
			plain, synced, sratio = append(plain, p), append(synced, s), append(sratio, s/p)
		}
		sf := figure("embedded broker on disk, --sync", "msg/s", synced)
		sf.Note = "fsync per produced batch and per commit, to survive a power loss"
		rep.Figures = append(rep.Figures,
			figure("embedded broker on disk, produce + commit", "msg/s", plain), sf,
			figure("--sync / without", "ratio", sratio))
	}

	// 7. cost.
	step("memory: one warm process, the daemon with 10 deployments of pool 8")
	cpuFig := figure("restarter CPU per message, without children", "µs", cpu).goal("<=", 100)
	cpuFig.Note = "includes what the kernel charges the daemon for creating each process: compare with the baseline"
	rep.Figures = append(rep.Figures, cpuFig, figure("parent CPU per spawn (baseline)", "µs", spawnCPU))
	warm, daemonRSS, err := d.memory(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	rep.Figures = append(rep.Figures,
		figure("RSS of one warm function process", "MiB", warm),
		figure("RSS of the daemon, 10 deployments of pool 8", "MiB", []float64{daemonRSS}))
	return rep, nil
}

// benchDaemon is `fnctl up` in a process of its own, so its CPU time and
// memory are its own.
type benchDaemon struct {
	cmd     *exec.Cmd
	client  *daemon.Client
	pid     int
	state   string
	admin   sarama.ClusterAdmin
	kc      sarama.Client
	brokers []string
	done    chan struct{}
}

func startDaemon(ctx context.Context, cfg Config) (*benchDaemon, error) {
	return startDaemonOn(ctx, cfg.Fnctl, cfg.Brokers, cfg.Kafka, cfg.KafkaEnv)
}

// startDaemonOn starts `fnctl up` on brokers, connecting as conn says
// (kafkaEnv: the same as FN_* variables), or with its own embedded broker
// when there are none.
func startDaemonOn(ctx context.Context, fnctl string, brokers []string, conn *kafka.Conn, kafkaEnv []string) (*benchDaemon, error) {
	state, err := os.MkdirTemp("", "microfn-bench-")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"up", "--state", state, "--listen", addr}
	if len(brokers) > 0 {
		args = append(args, "--brokers", strings.Join(brokers, ","))
	} else {
		baddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args = append(args, "--broker-listen", baddr)
		brokers = []string{baddr}
	}
	cmd := exec.Command(fnctl, args...)
	cmd.Env = append(os.Environ(), kafkaEnv...)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start fnctl up: %w", err)
	}
	d := &benchDaemon{cmd: cmd, pid: cmd.Process.Pid, state: state, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(d.done)
	}()
	if d.client, err = daemon.NewClient(addr, ""); err != nil {
		d.stop()
		return nil, err
	}
	for start := time.Now(); ; {
		if _, err := d.client.Status(ctx); err == nil {
			break
		}
		select {
		case <-d.done:
			return nil, errors.New("fnctl up exited at start")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > time.Minute {
			d.stop()
			return nil, errors.New("fnctl up did not serve within a minute")
		}
	}
	d.brokers = brokers
	if d.kc, err = conn.NewClient(brokers, conn.Config("microfn-bench")); err != nil {
		d.stop()
		return nil, err
	}
	if d.admin, err = sarama.NewClusterAdminFromClient(d.kc); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *benchDaemon) stop() {
	if d.admin != nil {
		d.admin.Close()
	}
	d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.done:
	case <-time.After(40 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
	os.RemoveAll(d.state)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (d *benchDaemon) topic(name string, partitions int) (string, error) {
	t := fmt.Sprintf("bench-%s-%d", name, time.Now().UnixNano())
	err := d.admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: -1}, false)
	return t, err
}

// deploy deploys the function on topic and waits until its pool is warm.
func (d *benchDaemon) deploy(ctx context.Context, cfg Config, name, topic string, pool int, env ...string) error {
	s := restarter.Spec{Name: name, Binary: cfg.Function, Topic: topic, Pool: pool, Order: cfg.Order, Env: env}
	if _, err := d.client.Deploy(ctx, s, daemon.DeployParams{}); err != nil {
		return err
	}
	for deadline := time.Now().Add(time.Minute); ; {
		st, err := d.client.List(ctx)
		if err != nil {
			return err
		}
		for _, s := range st {
			if s.Name == name && s.Warm >= pool {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("deployment %s not warm within a minute", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// throughput publishes the messages to a warm deployment and returns
// messages/s from the first publish to the commit of the last, and the
// daemon's CPU time per message meanwhile (its children excluded).
func (d *benchDaemon) throughput(ctx context.Context, cfg Config, name string, value []byte) (float64, float64, error) {
	topic, err := d.topic(name, cfg.Partitions)
	if err != nil {
		return 0, 0, err
	}
	if err := d.deploy(ctx, cfg, name, topic, cfg.Pool); err != nil {
		return 0, 0, err
	}
	defer d.client.Remove(context.Background(), name)
	cpu0, err := procCPU(d.pid)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := publish(cfg.Kafka, cfg.Brokers, topic, cfg.Messages, value); err != nil {
		return 0, 0, err
	}
	if err := d.waitCommitted(ctx, name, topic, cfg.Partitions, cfg.Messages, nil); err != nil {
		return 0, 0, err
	}
	elapsed := time.Since(start)
	cpu1, err := procCPU(d.pid)
	if err != nil {
		return 0, 0, err
	}
	return float64(cfg.Messages) / elapsed.Seconds(), float64((cpu1 - cpu0).Microseconds()) / float64(cfg.Messages), nil
}

// waitCommitted polls the group's committed offsets until n messages are
// committed; observe, if set, sees every advance of a partition (to within
// the 2 ms polling interval).
func (d *benchDaemon) waitCommitted(ctx context.Context, group, topic string, partitions, n int, observe func(p int32, off int64, at time.Time)) error {
	// Polling costs the broker (and, embedded, this process) CPU that the
	// measured processes need: poll finely only when commit times matter.
	every := 20 * time.Millisecond
	if observe != nil {
		every = 2 * time.Millisecond
	}
	parts := make([]int32, partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	last := map[int32]int64{}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c, err := kafka.FetchCommitted(d.kc, group, topic, parts)
		if err != nil {
			return err
		}
		now := time.Now()
		var total int64
		for p, cm := range c {
			if cm.Offset > last[p] {
				last[p] = cm.Offset
				if observe != nil {
					observe(p, cm.Offset, now)
				}
			}
			total += max(cm.Offset, 0)
		}
		if total >= int64(n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d committed after 5 minutes", total, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// latency publishes at rate messages/s, one at a time, to a warm
// deployment, and returns the percentiles of publish-to-handler-start and
// publish-to-commit.
func (d *benchDaemon) latency(ctx context.Context, cfg Config, rate float64, value []byte) ([]Figure, error) {
	n := max(cfg.Messages/3, 60)
	topic, err := d.topic("lat", cfg.Partitions)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(d.state, topic+".log") // one per run: offsets repeat across topics
	if err := d.deploy(ctx, cfg, "lat", topic, cfg.Pool, "FN_BENCH_LOG="+logPath); err != nil {
		return nil, err
	}
	defer d.client.Remove(context.Background(), "lat")
	p, err := sarama.NewSyncProducer(cfg.Brokers, cfg.Kafka.Config("microfn-bench"))
	if err != nil {
		return nil, err
	}
	defer p.Close()
	mcfg := cfg.Kafka.Config("microfn-bench")
	mcfg.Producer.Partitioner = sarama.NewManualPartitioner
	manual, err := sarama.NewSyncProducer(cfg.Brokers, mcfg)
	if err != nil {
		return nil, err
	}
	defer manual.Close()

	type key struct {
		p   int32
		off int64
	}
	var mu sync.Mutex
	commits := map[int32][]struct {
		off int64
		at  time.Time
	}{}
	committed := make(chan error, 1)
	go func() {
		committed <- d.waitCommitted(ctx, "lat", topic, cfg.Partitions, n+cfg.Partitions, func(p int32, off int64, at time.Time) {
			mu.Lock()
			commits[p] = append(commits[p], struct {
				off int64
				at  time.Time
			}{off, at})
			mu.Unlock()
		})
	}()
	// Warm up: the first message of each partition of a new topic waits
	// for the consumer's first fetch of it (tens of ms); steady state is
	// what is measured.
	warm := 0
	for part := range cfg.Partitions {
		pm := kafka.ProducerMessage(topic, nil, value, nil)
		pm.Partition = int32(part)
		if _, _, err := manual.SendMessage(pm); err != nil {
			return nil, err
		}
		warm++
	}
	if err := d.waitCommitted(ctx, "lat", topic, cfg.Partitions, warm, nil); err != nil {
		return nil, err
	}
	sent := map[key]time.Time{}
	interval := time.Duration(float64(time.Second) / max(rate, 1))
	next := time.Now()
	for i := range n {
		time.Sleep(time.Until(next))
		next = next.Add(interval)
		t0 := time.Now()
		part, off, err := p.SendMessage(kafka.ProducerMessage(topic, []byte(strconv.Itoa(i)), value, nil))
		if err != nil {
			return nil, err
		}
		sent[key{part, off}] = t0
	}
	if err := <-committed; err != nil {
		return nil, err
	}
	f, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var toStart, toCommit []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var part int32
		var off, ns int64
		if _, err := fmt.Sscan(sc.Text(), &part, &off, &ns); err != nil {
			continue
		}
		t0, ok := sent[key{part, off}]
		if !ok {
			continue
		}
		toStart = append(toStart, float64(time.Unix(0, ns).Sub(t0).Microseconds())/1000)
		mu.Lock()
		for _, c := range commits[part] {
			if c.off > off {
				toCommit = append(toCommit, float64(c.at.Sub(t0).Microseconds())/1000)
				break
			}
		}
		mu.Unlock()
	}
	note := fmt.Sprintf("%d messages at %.0f msg/s", len(toStart), rate)
	out := []Figure{
		percentile("publish to handler start, p50", toStart, 50).goal("<=", 1),
		percentile("publish to handler start, p99", toStart, 99).goal("<=", 5),
		percentile("publish to commit, p50", toCommit, 50),
		percentile("publish to commit, p99", toCommit, 99),
	}
	for i := range out {
		out[i].Note = note
	}
	return out, nil
}

func percentile(name string, ms []float64, p float64) Figure {
	f := Figure{Name: name, Unit: "ms"}
	if len(ms) == 0 {
		return f
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	f.Min, f.Max = s[0], s[len(s)-1]
	f.Median = s[min(int(math.Ceil(p/100*float64(len(s))))-1, len(s)-1)]
	return f
}

// memory returns the RSS of the warm function processes of one deployment
// of cfg.Pool, and of the daemon while it runs 10 deployments of pool 8.
func (d *benchDaemon) memory(ctx context.Context, cfg Config) ([]float64, float64, error) {
	var names []string
	defer func() {
		for _, n := range names {
			d.client.Remove(context.Background(), n)
		}
	}()
	for i := range 10 {
		name := fmt.Sprintf("mem%d", i)
		topic, err := d.topic(name, cfg.Partitions)
		if err != nil {
			return nil, 0, err
		}
		if err := d.deploy(ctx, cfg, name, topic, 8); err != nil {
			return nil, 0, err
		}
		names = append(names, name)
	}
	var warm []float64
	for _, pid := range children(d.pid) {
		if rss, err := procRSS(pid); err == nil {
			warm = append(warm, rss)
		}
	}
	rss, err := procRSS(d.pid)
	return warm, rss, err
}

// standaloneRate runs the standalone build once per message, one after
// the other, as a process manager restarting it would.
func standaloneRate(ctx context.Context, cfg Config, name string, value []byte) (float64, error) {
	n := max(cfg.Messages/60, 5)
	topic := fmt.Sprintf("bench-%s-%d", name, time.Now().UnixNano())
	if err := createTopic(cfg.Kafka, cfg.Brokers, topic, cfg.Partitions); err != nil {
		return 0, err
	}
	if err := publish(cfg.Kafka, cfg.Brokers, topic, n, value); err != nil {
		return 0, err
	}
	env := append(os.Environ(), cfg.KafkaEnv...)
	env = append(env, "FN_BROKERS="+strings.Join(cfg.Brokers, ","), fnproto.EnvTopic+"="+topic, fnproto.EnvGroup+"="+topic)
	start := time.Now()
	for range n {
		cmd := exec.CommandContext(ctx, cfg.Standalone)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%s: %v: %s", filepath.Base(cfg.Standalone), err, lastLine(out))
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// embeddedRates consumes n messages with fn.Serve and with a raw
// watermill-kafka subscriber on the same broker and topic, each in its own
// consumer group, and returns both rates.
func embeddedRates(ctx context.Context, cfg Config, name string, n int, value []byte) (float64, float64, error) {
	topic := fmt.Sprintf("bench-%s-%d", name, time.Now().UnixNano())
	if err := createTopic(cfg.Kafka, cfg.Brokers, topic, cfg.Partitions); err != nil {
		return 0, 0, err
	}
	if err := publish(cfg.Kafka, cfg.Brokers, topic, n, value); err != nil {
		return 0, 0, err
	}
	kcfg := broker.KafkaConfig{Brokers: strings.Join(cfg.Brokers, ",")}
	if c := cfg.Kafka; c != nil {
		kcfg.TLS = c.TLS
		if c.Mechanism != "" {
			kcfg.SASL = &broker.SASL{Mechanism: c.Mechanism, User: c.User, Password: c.Password}
		}
	}
	b, err := broker.NewKafka(ctx, kcfg)
	if err != nil {
		return 0, 0, err
	}
	defer b.Close()

	var served atomic.Int64
	all := make(chan struct{})
	f := fn.New("serve-"+topic, topic, func(context.Context, []byte) error {
		if served.Add(1) == int64(n) {
			close(all)
		}
		return nil
	})
	sctx, cancel := context.WithCancel(ctx)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- fn.Serve(sctx, b, fn.ServeFuncs(f)) }()
	select {
	case <-all:
	case err := <-done:
		cancel()
		return 0, 0, fmt.Errorf("fn.Serve: %v", err)
	case <-time.After(5 * time.Minute):
		cancel()
		return 0, 0, errors.New("fn.Serve: timed out")
	}
	serveRate := float64(n) / time.Since(start).Seconds()
	cancel()
	<-done

	sub, err := b.Subscriber("raw-" + topic)
	if err != nil {
		return 0, 0, err
	}
	defer sub.Close()
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	start = time.Now()
	ch, err := sub.Subscribe(rctx, topic)
	if err != nil {
		return 0, 0, err
	}
	// The baseline does nothing but acknowledge.
	got := 0
	for m := range ch {
		m.Ack()
		if got++; got == n {
			break
		}
	}
	if got < n {
		return 0, 0, fmt.Errorf("raw subscriber: %d of %d messages", got, n)
	}
	return serveRate, float64(n) / time.Since(start).Seconds(), nil
}

// procCPU is a process's user+system CPU time, its children excluded.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// After the command: state(0) ... utime(11) stime(12), in clock ticks.
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks, nil
}

// procRSS is a process's resident set in MiB.
func procRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// children lists a process's child processes.
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
