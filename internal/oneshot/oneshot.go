// Package oneshot runs a function binary on one message the way the
// restarter does, over the pipe protocol, with none of the restarter's
// pooling, deadlines or process-group handling: for `fnctl invoke` and for
// the spawn baseline of the benchmarks.
package oneshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/microfn/microfn/internal/pipe"
)

// Run starts bin, waits for its ready frame, sends m, reads the outcome and
// reaps the process. The process's stdout and stderr go to output (nil
// discards them). ctx bounds the whole run.
func Run(ctx context.Context, bin string, m *pipe.Message, output io.Writer) (*pipe.Outcome, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	defer outR.Close()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), pipe.EnvPipe+"=3,4")
	cmd.ExtraFiles = []*os.File{inR, outW}
	cmd.Stdout, cmd.Stderr = output, output
	err = cmd.Start()
	inR.Close() // the child has its copies; ours would hide its exit
	outW.Close()
	if err != nil {
		inW.Close()
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	fail := func(what string) error {
		inW.Close()
		werr := <-done
		if werr == nil {
			werr = errors.New("it exited")
		}
		return fmt.Errorf("%s %s: %v", bin, what, werr)
	}
	if typ, _, err := pipe.ReadFrame(outR); err != nil || typ != pipe.TypeReady {
		return nil, fail("is not a function built with microfn's fn package (no ready frame)")
	}
	if _, err := inW.Write(pipe.EncodeMessage(m)); err != nil {
		return nil, fail("did not take the message")
	}
	inW.Close()
	typ, body, err := pipe.ReadFrame(outR)
	if err != nil || typ != pipe.TypeOutcome {
		return nil, fail("ended without reporting an outcome")
	}
	out, err := pipe.DecodeOutcome(body)
	if err != nil {
		return nil, err
	}
	if err := <-done; err != nil {
		return nil, fmt.Errorf("%s after reporting its outcome: %w", bin, err)
	}
	return out, nil
}
