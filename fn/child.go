package fn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/fnproto"
	"github.com/microfn/microfn/internal/pipe"
)

// runChild runs one message under the restarter: announce readiness, wait
// for the message frame, invoke, report the result. The restarter owns
// attempts, dead letters, commits and the deadline (it kills the process
// group when the deadline passes), so the process only classifies.
func runChild(f *Func, spec string, stderr io.Writer) int {
	in, out, err := openPipes(spec)
	if err != nil {
		fmt.Fprintf(stderr, "fn: %s=%q: %v\n", pipe.EnvPipe, spec, err)
		return fnproto.ExitUsage
	}
	if _, err := out.Write(pipe.AppendReady()); err != nil {
		fmt.Fprintf(stderr, "fn: announce ready: %v\n", err)
		return fnproto.ExitBroker
	}
	typ, body, err := pipe.ReadFrame(in)
	if errors.Is(err, io.EOF) {
		return fnproto.ExitOK // the restarter no longer needs this process
	}
	if err != nil || typ != pipe.TypeMessage {
		fmt.Fprintf(stderr, "fn: read message from the restarter: type %q: %v\n", typ, err)
		return fnproto.ExitUsage
	}
	pm, err := pipe.DecodeMessage(body)
	if err != nil {
		fmt.Fprintf(stderr, "fn: decode message from the restarter: %v\n", err)
		return fnproto.ExitUsage
	}
	m := &Message{
		Topic: pm.Topic, Partition: pm.Partition, Offset: pm.Offset, Key: pm.Key, Value: pm.Value,
		Headers: make(map[string]string, len(pm.Headers)), Timestamp: pm.Timestamp, Attempt: pm.Attempt,
	}
	for _, h := range pm.Headers {
		m.Headers[h.Key] = h.Value
	}
	g := *f
	if !pm.Deadline.IsZero() {
		g.spec.timeout = max(time.Until(pm.Deadline), time.Millisecond)
	}
	r := g.invoke(context.Background(), m)
	if _, err := out.Write(pipe.EncodeOutcome(outcomeFrame(r, stderr))); err != nil {
		fmt.Fprintf(stderr, "fn: report outcome: %v\n", err)
		return fnproto.ExitBroker
	}
	return fnproto.ExitOK
}

// outcomeFrame is r as the restarter reads it; the restarter decides
// what follows. A panic's stack goes to the function's log (stderr), not
// into the frame.
func outcomeFrame(r delivery.Result, stderr io.Writer) *pipe.Outcome {
	o := &pipe.Outcome{Failure: string(r.Failure)}
	if r.Err != nil {
		o.Error = r.Err.Error()
		var pe *panicError
		if errors.As(r.Err, &pe) {
			fmt.Fprintf(stderr, "%v\n%s", pe, pe.stack)
		}
	}
	for _, e := range r.Events {
		pe := pipe.Event{Topic: e.Topic, Key: e.Key, Value: e.Value}
		for k, v := range e.Headers {
			pe.Headers = append(pe.Headers, pipe.Header{Key: k, Value: v})
		}
		o.Events = append(o.Events, pe)
	}
	return o
}

func openPipes(spec string) (in, out *os.File, err error) {
	a, b, ok := strings.Cut(spec, ",")
	if !ok {
		return nil, nil, errors.New("want IN,OUT file descriptors")
	}
	fin, err1 := strconv.Atoi(a)
	fout, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || fin < 3 || fout < 3 {
		return nil, nil, errors.New("want IN,OUT file descriptors, both 3 or more")
	}
	return os.NewFile(uintptr(fin), "fn-in"), os.NewFile(uintptr(fout), "fn-out"), nil
}
