// Command trivialfn is the function microfn's benchmarks run: it
// acknowledges every message and does nothing else, so what is measured
// is microfn, not the handler.
//
// With FN_BENCH_LOG set it appends "partition offset unixnano" to that
// file when the handler starts, for the latency measurement. With
// FN_BENCH_SLEEP (a duration) it then waits that long, as a handler
// waiting on another service would.
package main

import (
	"context"
	"os"
	"strconv"
	"time"

	"github.com/microfn/microfn/fn"
)

func handle(ctx context.Context, _ []byte) error {
	if path := os.Getenv("FN_BENCH_LOG"); path != "" {
		start := time.Now().UnixNano()
		m := fn.MessageFrom(ctx)
		line := strconv.Itoa(int(m.Partition)) + " " + strconv.FormatInt(m.Offset, 10) + " " + strconv.FormatInt(start, 10) + "\n"
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.WriteString(line); err != nil {
			return err
		}
	}
	if d, err := time.ParseDuration(os.Getenv("FN_BENCH_SLEEP")); err == nil {
		time.Sleep(d)
	}
	return nil
}

func main() {
	fn.Subscribe("trivial", "bench", handle)
	fn.Main()
}
