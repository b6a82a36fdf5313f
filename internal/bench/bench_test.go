package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

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
