// Package testlog is the invocation log of the test function
// (tests/testfn): one JSON line per invocation, appended by concurrent
// processes and read back by the end-to-end tests.
package testlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Record is one invocation.
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
	// Phase is "start" when the invocation begins and "end" when it
	// returns; a start without an end is an invocation that was cut off.
	Phase string `json:"phase"`
	// At is when the record was written, in Unix nanoseconds.
	At int64 `json:"at"`
	// Child is the pid of a process the invocation started, if any.
	Child int `json:"child,omitempty"`
}

// Append adds r to the log at path with one write under O_APPEND, so lines
// of concurrent processes never interleave.
func Append(path string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(append(b, '\n'))
	return err
}

// Read returns the records at path; a missing file is an empty log. A
// last line without its newline is being written (a reader of a regular
// file can see a write half done) and is left for the next read.
func Read(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	lines := bytes.Split(b, []byte("\n"))
	lines = lines[:len(lines)-1] // empty, or a line still being written
	out := make([]Record, 0, len(lines))
	for _, l := range lines {
		var r Record
		if err := json.Unmarshal(l, &r); err != nil {
			return nil, fmt.Errorf("bad log line %q: %w", l, err)
		}
		out = append(out, r)
	}
	return out, nil
}
