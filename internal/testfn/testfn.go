// Package testfn is the handler of the function the end-to-end tests run,
// as a binary (tests/testfn) under the restarter and standalone, and
// in-process under fn.Serve and fntest. Its raw payload says what to do:
//
//	ok            succeed
//	fail          fail every attempt
//	fail-until=N  fail attempts before N, then succeed
//	panic         panic
//	permanent     fail permanently
//	emit=TOPIC    succeed and emit the payload's key and value to TOPIC
//	sleep=D       sleep for duration D, then succeed
//	sleep-first=D sleep for D on the first attempt only, then succeed
//	hang          start a child process (sleep 3600) and wait for it for ever
//	alloc=N       allocate and touch N MiB, then succeed
//	fail-if=PATH  fail while the file PATH exists
//	sleep-fail=D  sleep for duration D, then fail
//	block-while=PATH  wait while the file PATH exists, then succeed
//	exit=N        end the process with exit code N (a crash before any outcome)
//
// Anything after a space is ignored (the tests put a message id there).
// Every invocation appends a testlog.Record to the log when it starts
// and another when it returns.
package testfn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/microfn/microfn/fn"
	"github.com/microfn/microfn/internal/testlog"
)

// Handler returns the handler, logging to the testlog at logPath ("" for
// none).
func Handler(logPath string) func(context.Context, []byte) error {
	return func(ctx context.Context, v []byte) error { return handle(ctx, v, logPath) }
}

// Command is the payload of the JSON subscriber, for tests of a payload
// that does not decode: {"cmd": "ok"} does what "ok" does.
type Command struct {
	Cmd string `json:"cmd"`
}

// JSONHandler returns the handler of the JSON subscriber.
func JSONHandler(logPath string) func(context.Context, Command) error {
	return func(ctx context.Context, c Command) error { return handle(ctx, []byte(c.Cmd), logPath) }
}

func handle(ctx context.Context, v []byte, path string) error {
	m := fn.MessageFrom(ctx)
	r := testlog.Record{PID: os.Getpid(), Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		Attempt: m.Attempt, Value: v, Null: v == nil, Headers: m.Headers, Phase: "start"}
	if m.Key != nil {
		k := string(m.Key)
		r.Key = &k
	}
	logRec := func(phase string) error {
		if path == "" {
			return nil
		}
		r.Phase, r.At = phase, time.Now().UnixNano()
		return testlog.Append(path, r)
	}
	if err := logRec("start"); err != nil {
		return err
	}
	defer logRec("end")
	cmd, _, _ := strings.Cut(string(v), " ")
	op, arg, _ := strings.Cut(cmd, "=")
	switch op {
	case "fail":
		return errors.New("told to fail")
	case "fail-until":
		n, _ := strconv.Atoi(arg)
		if m.Attempt < n {
			return fmt.Errorf("told to fail until attempt %d", n)
		}
	case "panic":
		panic("told to panic")
	case "permanent":
		return fn.Permanent(errors.New("told to fail permanently"))
	case "emit":
		opts := []fn.EmitOption{fn.WithHeader("from", "testfn")}
		if m.Key != nil {
			opts = append(opts, fn.WithKey(string(m.Key)))
		}
		return fn.Emit(ctx, arg, v, opts...)
	case "sleep":
		d, _ := time.ParseDuration(arg)
		time.Sleep(d)
	case "sleep-first":
		if m.Attempt == 1 {
			d, _ := time.ParseDuration(arg)
			time.Sleep(d)
		}
	case "fail-if":
		if _, err := os.Stat(arg); err == nil {
			return fmt.Errorf("told to fail while %s exists", arg)
		}
	case "sleep-fail":
		d, _ := time.ParseDuration(arg)
		time.Sleep(d)
		return errors.New("told to fail after sleeping")
	case "block-while":
		for {
			if _, err := os.Stat(arg); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	case "alloc":
		n, _ := strconv.Atoi(arg)
		b := make([]byte, n<<20)
		for i := range b {
			b[i] = byte(i)
		}
		keep = b
	case "exit":
		n, _ := strconv.Atoi(arg)
		fmt.Fprintf(os.Stderr, "testfn: exiting with code %d as told\n", n)
		os.Exit(n)
	case "hang":
		c := exec.Command("sleep", "3600")
		if err := c.Start(); err != nil {
			return err
		}
		r.Child = c.Process.Pid
		if err := logRec("child"); err != nil {
			return err
		}
		return c.Wait()
	}
	return nil
}

// keep holds what alloc allocated, so it is not collected early.
var keep []byte
