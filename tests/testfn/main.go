// Command testfn is the function the end-to-end tests run; its handler,
// and what its payloads tell it to do, are in internal/testfn. It appends
// a record of every invocation to $TESTFN_LOG.
//
// With TESTFN_CRASH_AT_START=1 the binary exits with code 3 before it
// declares anything: a crash loop at start-up. With TESTFN_JSON=1 its
// subscriber decodes a JSON payload ({"cmd": "ok"}) instead of taking the
// raw value. TESTFN_TIMEOUT declares another timeout than 10s.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/microfn/microfn/fn"
	"github.com/microfn/microfn/internal/testfn"
)

func main() {
	if os.Getenv("TESTFN_CRASH_AT_START") == "1" {
		fmt.Fprintln(os.Stderr, "testfn: crashing at start as told")
		os.Exit(3)
	}
	// The tests choose the topic and attempts with FN_TOPIC and FN_MAX_ATTEMPTS.
	timeout := 10 * time.Second
	if d, err := time.ParseDuration(os.Getenv("TESTFN_TIMEOUT")); err == nil {
		timeout = d
	}
	opts := []fn.Option{fn.MaxAttempts(3), fn.Timeout(timeout)}
	if os.Getenv("TESTFN_JSON") == "1" {
		fn.Subscribe("testfn", "testfn", testfn.JSONHandler(os.Getenv("TESTFN_LOG")), opts...)
	} else {
		fn.Subscribe("testfn", "testfn", testfn.Handler(os.Getenv("TESTFN_LOG")), opts...)
	}
	fn.Main()
}
