package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/microfn/microfn/broker"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/testenv"
	"github.com/microfn/microfn/restarter"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

func trivial(t testing.TB) string {
	bin := filepath.Join(t.TempDir(), "trivialfn")
	if b, err := exec.Command("go", "build", "-o", bin, "./trivialfn").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	return bin
}

// BenchmarkRestarterVsSpawn reports messages/s through the restarter with a
// warm pool and the spawn rate of the same binary, measured in the same
// run, and their ratio:
//
//	go test -run '^$' -bench RestarterVsSpawn -benchtime 1x ./internal/bench
func BenchmarkRestarterVsSpawn(b *testing.B) {
	env := testenv.Broker(b)
	brokers, _ := kafka.ParseBrokers(env.Brokers)
	bin := trivial(b)
	value := make([]byte, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n := 2000
	for b.Loop() {
		spawn, err := SpawnRate(ctx, bin, n, 2, value)
		if err != nil {
			b.Fatal(err)
		}
		thr, err := Throughput(ctx, brokers, bin, n, 8, restarter.OrderKey, value)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(spawn, "spawn/s")
		b.ReportMetric(thr, "msgs/s")
		b.ReportMetric(thr/spawn, "ratio")
	}
}

// The benchmark's parts work (a short run; no timing asserted).
func TestBenchParts(t *testing.T) {
	env := testenv.Broker(t)
	brokers, _ := kafka.ParseBrokers(env.Brokers)
	bin := trivial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if r, err := SpawnRate(ctx, bin, 10, 2, []byte("x")); err != nil || r <= 0 {
		t.Fatalf("spawn rate %v, %v", r, err)
	}
	if r, err := Throughput(ctx, brokers, bin, 20, 2, restarter.OrderKey, []byte("x")); err != nil || r <= 0 {
		t.Fatalf("throughput %v, %v", r, err)
	}
	for _, sync := range []bool{false, true} {
		if r, err := DiskWriteRate(ctx, 5, sync, []byte("x")); err != nil || r <= 0 {
			t.Fatalf("disk write rate (sync %v) %v, %v", sync, r, err)
		}
	}
}

// BenchmarkBrokerSync reports the embedded broker's produce+commit rate on
// disk without and with --sync, measured in the same run, and their ratio:
//
//	go test -run '^$' -bench BrokerSync -benchtime 1x ./internal/bench
func BenchmarkBrokerSync(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	value := make([]byte, 100)
	for b.Loop() {
		plain, err := DiskWriteRate(ctx, 500, false, value)
		if err != nil {
			b.Fatal(err)
		}
		synced, err := DiskWriteRate(ctx, 500, true, value)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(plain, "msgs/s")
		b.ReportMetric(synced, "sync-msgs/s")
		b.ReportMetric(synced/plain, "ratio")
	}
}

// BenchmarkRestarterThroughput runs the restarter alone, for profiling:
//
//	go test -run '^$' -bench RestarterThroughput -benchtime 1x -cpuprofile cpu.out ./internal/bench
func BenchmarkRestarterThroughput(b *testing.B) {
	env := testenv.Broker(b)
	brokers, _ := kafka.ParseBrokers(env.Brokers)
	bin := trivial(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for b.Loop() {
		thr, err := Throughput(ctx, brokers, bin, 1500, 8, restarter.OrderKey, make([]byte, 100))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(thr, "msgs/s")
	}
}

// BenchmarkLatencyByRate measures publish-to-handler-start at several
// rates through fnctl up, to show how the tail grows with load on the
// machine (each message also costs a process start):
//
//	go test -run '^$' -bench LatencyByRate -benchtime 1x ./internal/bench
func BenchmarkLatencyByRate(b *testing.B) {
	env := testenv.Broker(b)
	brokers, _ := kafka.ParseBrokers(env.Brokers)
	fnctl := filepath.Join(b.TempDir(), "fnctl")
	if out, err := exec.Command("go", "build", "-o", fnctl, "../../cmd/fnctl").CombinedOutput(); err != nil {
		b.Fatalf("build fnctl: %v\n%s", err, out)
	}
	cfg := Config{Function: trivial(b), Fnctl: fnctl, Brokers: brokers, Messages: 300}
	cfg.setDefaults()
	d, err := startDaemon(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer d.stop()
	for b.Loop() {
		for _, rate := range []float64{10, 30, 60} {
			figs, err := d.latency(context.Background(), cfg, rate, make([]byte, 100))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(figs[0].Median, fmt.Sprintf("p50-ms@%.0f/s", rate))
			b.ReportMetric(figs[1].Median, fmt.Sprintf("p99-ms@%.0f/s", rate))
		}
	}
}

// BenchmarkStartCost reports what one function process costs to start,
// take its message and exit, against a hello-world program spawned by the
// same harness in the same run, with and without GOMAXPROCS=1:
//
//	go test -run '^$' -bench StartCost -benchtime 1x ./internal/bench
func BenchmarkStartCost(b *testing.B) {
	hello := filepath.Join(b.TempDir(), "hello")
	if out, err := exec.Command("go", "build", "-o", hello, "./hello").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	bin := trivial(b)
	ctx := context.Background()
	value := make([]byte, 100)
	n := 300
	for b.Loop() {
		h, err := StartCost(ctx, hello, false, n, nil, value)
		if err != nil {
			b.Fatal(err)
		}
		f, err := StartCost(ctx, bin, true, n, nil, value)
		if err != nil {
			b.Fatal(err)
		}
		f1, err := StartCost(ctx, bin, true, n, []string{"GOMAXPROCS=1"}, value)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(h.Microseconds()), "hello-µs")
		b.ReportMetric(float64(f.Microseconds()), "fn-µs")
		b.ReportMetric(float64(f1.Microseconds()), "fn-gomaxprocs1-µs")
		b.ReportMetric(float64(f)/float64(h), "ratio")
		b.ReportMetric(float64(f1)/float64(h), "ratio-gomaxprocs1")
	}
}

// BenchmarkIdleDeployments measures what idle deployments cost the engine
// and the embedded broker together, in this one process (as in fnctl up),
// with nothing published: CPU in % of a core over 20 s, and memory and
// sockets per deployment over the process with none. With -cpuprofile it
// shows where idle cost goes:
//
//	go test -run '^$' -bench IdleDeployments -benchtime 1x ./internal/bench
func BenchmarkIdleDeployments(b *testing.B) {
	bin := trivial(b)
	for _, c := range []struct {
		n, minPool, maxPool int
	}{{40, 1, 1}, {200, 1, 1}, {200, 0, 8}} {
		b.Run(fmt.Sprintf("n=%d/pool=%d-%d", c.n, c.minPool, c.maxPool), func(b *testing.B) {
			for b.Loop() {
				idleDeployments(b, bin, c.n, c.minPool, c.maxPool)
			}
		})
	}
}

func idleDeployments(b *testing.B, bin string, n, minPool, maxPool int) {
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: b.TempDir(), Partitions: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	eng, err := restarter.New(restarter.Config{Brokers: []string{e.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close(context.Background())
	self := os.Getpid()
	rss0, _ := procRSS(self)
	socks0 := sockets(self)
	for i := range n {
		s := restarter.Spec{Name: fmt.Sprintf("idle%d", i), Binary: bin, Topic: fmt.Sprintf("idle%d", i), MinPool: minPool, MaxPool: maxPool}
		if err := eng.Deploy(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		ready := 0
		for _, s := range eng.Status() {
			if s.State == "running" && s.Warm >= minPool {
				ready++
			}
		}
		if ready == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d deployments running after 2 minutes", ready, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(idleSettle)
	c0, t0 := selfCPU(), time.Now()
	time.Sleep(20 * time.Second)
	cpu := 100 * float64(selfCPU()-c0) / float64(time.Since(t0))
	rss, _ := procRSS(self)
	b.ReportMetric(cpu, "%core")
	b.ReportMetric((rss-rss0)/float64(n), "MiB/deployment")
	b.ReportMetric(float64(sockets(self)-socks0)/float64(n), "sockets/deployment")
}
