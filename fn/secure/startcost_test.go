package secure_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/microfn/microfn/internal/bench"
)

// BenchmarkStartCost measures what linking fn/secure costs every start of
// a function, against the same function without it and a Go hello-world,
// in the same run:
//
//	go test -run '^$' -bench StartCost -benchtime 1x ./fn/secure
func BenchmarkStartCost(b *testing.B) {
	dir := b.TempDir()
	bins := map[string]string{"hello": "../../internal/bench/hello", "plain": "./testdata/plain", "secure": "./testdata/secure"}
	for name, pkg := range bins {
		bins[name] = filepath.Join(dir, name)
		if out, err := exec.Command("go", "build", "-o", bins[name], pkg).CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	ctx := context.Background()
	value := make([]byte, 100)
	env := []string{"GOMAXPROCS=1"} // as the restarter starts functions
	for b.Loop() {
		h, err := bench.StartCost(ctx, bins["hello"], false, 300, nil, value)
		if err != nil {
			b.Fatal(err)
		}
		p, err := bench.StartCost(ctx, bins["plain"], true, 300, env, value)
		if err != nil {
			b.Fatal(err)
		}
		s, err := bench.StartCost(ctx, bins["secure"], true, 300, env, value)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(p)/float64(h), "plain/hello")
		b.ReportMetric(float64(s)/float64(h), "secure/hello")
		b.ReportMetric(float64(s)/float64(p), "secure/plain")
	}
}
