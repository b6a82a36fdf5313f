// Command testfn is the function the end-to-end tests run. Its raw payload
// says what to do:
//
//	ok            succeed
//	fail          fail every attempt
//	fail-until=N  fail attempts before N, then succeed
//	panic         panic
//	permanent     fail permanently
//	emit=TOPIC    succeed and emit the payload's key and value to TOPIC
//	sleep=D       sleep for duration D, then succeed
//
// Anything after a space is ignored (the tests put a message id there).
// Every invocation appends one JSON line to $TESTFN_LOG: pid, key, topic,
// partition, offset, attempt, value and the headers.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/microfn/microfn/fn"
)

// Record is one line of $TESTFN_LOG.
type Record struct {
	PID       int               `json:"pid"`
	Key       *string           `json:"key"`
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Attempt   int               `json:"attempt"`
	Value     []byte            `json:"value"`
	Null      bool              `json:"null"`
	Headers   map[string]string `json:"headers"`
}

func handle(ctx context.Context, v []byte) error {
	m := fn.MessageFrom(ctx)
	r := Record{PID: os.Getpid(), Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		Attempt: m.Attempt, Value: v, Null: v == nil, Headers: m.Headers}
	if m.Key != nil {
		k := string(m.Key)
		r.Key = &k
	}
	if err := record(r); err != nil {
		return err
	}
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
	}
	return nil
}

func record(r Record) error {
	path := os.Getenv("TESTFN_LOG")
	if path == "" {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	// One write of a line under O_APPEND: concurrent processes never interleave.
	_, err = f.Write(append(b, '\n'))
	return err
}

func main() {
	topic := os.Getenv("TESTFN_TOPIC")
	if topic == "" {
		topic = "testfn"
	}
	attempts, _ := strconv.Atoi(os.Getenv("TESTFN_ATTEMPTS"))
	if attempts == 0 {
		attempts = 3
	}
	fn.Subscribe("testfn", topic, handle, fn.MaxAttempts(attempts), fn.Timeout(10*time.Second))
	fn.Main()
}
