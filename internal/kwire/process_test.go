package kwire

import (
	"bytes"
	"debug/elf"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	takePkg  = "github.com/microfn/microfn/internal/kwire/internal/take"
	helloPkg = "github.com/microfn/microfn/internal/kwire/internal/hello"
)

var (
	binDir  = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "kwire-bin") })
	binOnce sync.Map // package path to func() (string, error)
)

// removeBinaries removes what build built; TestMain calls it.
func removeBinaries() {
	if dir, err := binDir(); err == nil {
		os.RemoveAll(dir)
	}
}

// build builds a package's command once per test binary, with the
// environment a user's plain `go build` has (cgo as the toolchain
// defaults it).
func build(t testing.TB, pkg string) string {
	t.Helper()
	f, _ := binOnce.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		dir, err := binDir()
		if err != nil {
			return "", err
		}
		out := filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Env = slices.DeleteFunc(os.Environ(), func(s string) bool { return strings.HasPrefix(s, "CGO_ENABLED=") })
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", errors.New(string(b))
		}
		return out, nil
	}))
	path, err := f.(func() (string, error))()
	if err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	return path
}

// TestLinksNoNet: a binary on kwire's one-shot path links neither package
// net nor TLS and x509 (which import it), and a plain `go build` of it is
// statically linked: net's cgo resolver is what would make it dynamic.
func TestLinksNoNet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	out, err := exec.Command("go", "list", "-deps", takePkg).Output()
	if err != nil {
		t.Fatal(err)
	}
	deps := strings.Fields(string(out))
	for _, banned := range []string{"net", "crypto/tls", "crypto/x509", "os/user", "runtime/cgo",
		"github.com/IBM/sarama", "github.com/twmb/franz-go/pkg/kgo", "github.com/klauspost/compress/zstd"} {
		if slices.Contains(deps, banned) {
			t.Errorf("the one-shot path links %s", banned)
		}
	}
	f, err := elf.Open(build(t, takePkg))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (program header %v)", p.Type)
		}
	}
}

// TestTakeProcess runs the one-shot path as a process: it takes the
// record, copies it to another topic, commits and exits 0.
func TestTakeProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	c, env := testClient(t)
	ctx := testCtx(t)
	topic, copyTo := topicName(t), topicName(t)+"-copy"
	createTopic(t, env.Brokers, topic, 1)
	if err := c.Produce(ctx, &Record{Topic: topic, Key: []byte("k"), Value: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, build(t, takePkg), env.Brokers, "g-"+topic, topic, copyTo)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("take: %v: %s", err, stderr.Bytes())
	}
	if got := stdout.String(); got != "0 0 k hello\n" {
		t.Fatalf("take printed %q", got)
	}
	got, err := c.FetchCommitted(ctx, "g-"+topic, topic, 0)
	if err != nil || got[0] != (Committed{1, "take"}) {
		t.Fatalf("committed %v %v", got, err)
	}
	m := join(t, ctx, c, "g-"+copyTo, copyTo)
	r, err := m.Take(ctx)
	if err != nil || string(r.Value) != "hello" || string(r.Key) != "k" {
		t.Fatalf("copy: %v %v", r, err)
	}
}

// TestTakeProcessClosedPort: a function process pointed at a closed port
// prints one line naming it and exits 1, without minutes of retries.
func TestTakeProcessClosedPort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(testCtx(t), build(t, takePkg), addr, "g", "t")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1", err)
	}
	msg := stderr.String()
	t.Logf("%q after %v", msg, time.Since(start).Round(time.Millisecond))
	if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, addr) || !strings.Contains(msg, "connection refused") {
		t.Fatalf("stderr %q: want one line naming %s and the refusal", msg, addr)
	}
}

// BenchmarkStartCost spawns a hello-world and a binary that links kwire's
// whole one-shot path (it prints its usage and exits), interleaved, b.N
// times each, and reports each one's p50 wall time and CPU time (user and
// system, less disturbed by other load on the machine) and their ratios:
//
//	go test -run '^$' -bench StartCost -benchtime 300x ./internal/kwire
func BenchmarkStartCost(b *testing.B) {
	bins := []string{build(b, helloPkg), build(b, takePkg)}
	wall := make([][]float64, len(bins))
	cpu := make([][]float64, len(bins))
	b.ResetTimer()
	for range b.N {
		for i, bin := range bins {
			cmd := exec.Command(bin)
			start := time.Now()
			err := cmd.Run()
			d := time.Since(start)
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				b.Fatal(err)
			}
			wall[i] = append(wall[i], float64(d.Microseconds())/1000)
			cpu[i] = append(cpu[i], float64((cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()).Microseconds())/1000)
		}
	}
	b.StopTimer()
	p50 := func(s []float64) float64 { sort.Float64s(s); return s[len(s)/2] }
	hw, kw, hc, kc := p50(wall[0]), p50(wall[1]), p50(cpu[0]), p50(cpu[1])
	b.ReportMetric(hw, "hello-ms")
	b.ReportMetric(kw, "kwire-ms")
	b.ReportMetric(kw/hw, "ratio")
	b.ReportMetric(kw-hw, "added-ms")
	b.ReportMetric(hc, "hello-cpu-ms")
	b.ReportMetric(kc, "kwire-cpu-ms")
	b.ReportMetric(kc/hc, "cpu-ratio")
	for i, name := range []string{"hello-bytes", "kwire-bytes"} {
		if fi, err := os.Stat(bins[i]); err == nil {
			b.ReportMetric(float64(fi.Size()), name)
		}
	}
}
