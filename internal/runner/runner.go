// Package runner runs a function process on one message, as the restarter
// does and `fnctl invoke` repeats: it starts the process (ahead of time,
// for a function built with fn), hands it the message over the pipe
// protocol or, for a plain executable, on stdin, enforces the deadline
// and classifies how the attempt ended as a delivery.Result.
//
// Every process leads its own process group and dies with its parent
// (PDEATHSIG): at the deadline the group gets SIGTERM, then SIGKILL after
// the grace period, and once the process has exited whatever it started is
// killed too.
package runner

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/pipe"
)

// DefaultKillGrace is how long a process has between SIGTERM and SIGKILL
// when Config.KillGrace is zero.
const DefaultKillGrace = 2 * time.Second

// FunctionEnv is the Go runtime's settings for function processes built
// with fn, added to their environment unless it sets them: a process that
// handles one message has no use for more than one P, and starts faster
// without them (see BenchmarkStartCost in internal/bench).
var FunctionEnv = []string{"GOMAXPROCS=1"}

// Config says how to start a function's processes.
type Config struct {
	// Binary is the executable; Args are passed to it.
	Binary string
	Args   []string
	// Env is the process's whole environment.
	Env []string
	// Plain marks an executable not built with fn: it gets the message
	// value on stdin and its key, headers and origin in FN_* variables,
	// and exit code 0 acknowledges.
	Plain bool
	// MemoryLimit caps the process's data memory (RLIMIT_DATA) in bytes;
	// 0: none.
	MemoryLimit int64
	// Log receives the process's stdout and stderr, each line prefixed
	// with a timestamp and the invocation's label; nil discards them.
	Log io.Writer
	// KillGrace is the time between SIGTERM and SIGKILL at the deadline;
	// default DefaultKillGrace.
	KillGrace time.Duration
}

func (c Config) grace() time.Duration {
	if c.KillGrace > 0 {
		return c.KillGrace
	}
	return DefaultKillGrace
}

// Proc is a started function process.
type Proc struct {
	cfg  Config
	cmd  *exec.Cmd
	pid  int
	in   *os.File // our end of the process's message pipe (fn binaries)
	out  *os.File // our end of the process's outcome pipe (fn binaries)
	tail *tailBuffer

	label atomic.Pointer[string] // prefixes the process's log lines

	done chan struct{} // closed when the process has exited and its output is drained
	// reapMu orders kill against reaping: once the leader is reaped its
	// pid, and so its group id, may belong to another process.
	reapMu sync.Mutex
	reaped bool
	state  *os.ProcessState
	killed atomic.Bool // killed at its deadline
}

// Start starts a process of a function built with fn. It gets its pipes as
// fds 3 and 4 (FN_PIPE=3,4) and waits for its message; Ready waits for it
// to say it is ready.
func Start(c Config) (*Proc, error) {
	return start(c, nil)
}

func start(c Config, stdin io.Reader) (*Proc, error) {
	cmd := exec.Command(c.Binary, c.Args...)
	cmd.Env = slices.Clip(c.Env) // appends below must not share the caller's array
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The tail of stderr goes into the dead letter's fn_stderr header.
	p := &Proc{cfg: c, cmd: cmd, tail: &tailBuffer{max: delivery.MaxHeader - len(elision)}, done: make(chan struct{})}

	var childEnds []*os.File
	if !c.Plain {
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
		cmd.ExtraFiles = []*os.File{inR, outW}
		cmd.Env = append(cmd.Env, pipe.EnvPipe+"=3,4")
		p.in, p.out = inW, outR
		childEnds = append(childEnds, inR, outW)
	} else {
		cmd.Stdin = stdin
	}
	// Separate pipes, so that only stderr reaches fn_stderr; both go to
	// the log, each line marked with its stream.
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		p.closePipes()
		closeAll(childEnds)
		return nil, err
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutR.Close()
		stdoutW.Close()
		p.closePipes()
		closeAll(childEnds)
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	childEnds = append(childEnds, stdoutW, stderrW)

	err = cmd.Start()
	closeAll(childEnds) // the child has its copies; ours would hide EOF
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		p.closePipes()
		return nil, fmt.Errorf("start %s: %w", c.Binary, err)
	}
	p.pid = cmd.Process.Pid
	if c.MemoryLimit > 0 {
		// RLIMIT_DATA, not RLIMIT_AS: a Go runtime reserves far more
		// address space than it uses and would not even start under an
		// address-space limit; the data limit counts what is mapped
		// writable, which is what a leak grows.
		lim := &unix.Rlimit{Cur: uint64(c.MemoryLimit), Max: uint64(c.MemoryLimit)}
		if err := unix.Prlimit(p.pid, unix.RLIMIT_DATA, lim, nil); err != nil {
			p.kill(syscall.SIGKILL)
		}
	}
	var copied sync.WaitGroup
	copied.Add(2)
	go func() {
		defer copied.Done()
		p.copyOutput(stdoutR, "stdout", nil)
	}()
	go func() {
		defer copied.Done()
		p.copyOutput(stderrR, "stderr", p.tail)
	}()
	go func() {
		// Once the function has exited, nothing it started may outlive it:
		// kill its process group while the unreaped leader still holds the
		// group id, so the id cannot have been reused by another process.
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		p.kill(syscall.SIGKILL)
		copied.Wait()
		p.reapMu.Lock()
		_ = cmd.Wait()
		p.reaped = true
		p.reapMu.Unlock()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.pid }

// Done is closed once the process has exited and its output is drained.
func (p *Proc) Done() <-chan struct{} { return p.done }

// SetLabel names the invocation in the process's log lines.
func (p *Proc) SetLabel(label string) { p.label.Store(&label) }

// Ready waits for a started process to say it is ready for its message.
// When it exits first, the error says how and quotes its last line of
// output.
func (p *Proc) Ready() error {
	typ, _, err := pipe.ReadFrame(p.out)
	if err == nil && typ == pipe.TypeReady {
		return nil
	}
	p.closePipes()
	<-p.done
	return fmt.Errorf("function exited before taking a message (%s)%s", p.exitText(), lastLine(p.tail.String()))
}

// Run hands m to a ready process and returns how the attempt ended. The
// deadline is m.Deadline (none when zero): it holds until the process
// has exited, not only until it reported, so one that hangs after its
// outcome is killed too. When the process reported an outcome, Run
// returns without waiting for it to exit; Wait waits.
func (p *Proc) Run(m *pipe.Message) delivery.Result {
	start := time.Now()
	p.armDeadline(m.Deadline)
	var out *pipe.Outcome
	late := false // the deadline's SIGTERM came before the outcome
	if _, err := p.in.Write(pipe.EncodeMessage(m)); err == nil {
		p.in.Close()
		if typ, body, err := pipe.ReadFrame(p.out); err == nil && typ == pipe.TypeOutcome {
			out, _ = pipe.DecodeOutcome(body)
			late = p.killed.Load()
		}
	}
	p.out.Close()
	if out != nil {
		r := delivery.Result{Failure: delivery.Failure(out.Failure), Duration: time.Since(start)}
		if out.Error != "" {
			r.Err = errors.New(out.Error)
		} else if !r.OK() {
			r.Err = errors.New("the function reported a failure without an error")
		}
		for _, e := range out.Events {
			ev := delivery.Record{Topic: e.Topic, Key: e.Key, Value: e.Value, Headers: make(map[string]string, len(e.Headers))}
			for _, h := range e.Headers {
				ev.Headers[h.Key] = h.Value
			}
			r.Events = append(r.Events, ev)
		}
		if late && !r.OK() {
			// The SIGTERM may have ended what the handler waited for (a
			// child in its process group) before the function's own
			// deadline fired: the attempt overran, whatever it reported.
			r = delivery.Result{Failure: delivery.FailureTimeout, Duration: r.Duration,
				Err: fmt.Errorf("timed out after %v (then reported: %v)", deadlineOf(m.Deadline, start), r.Err)}
		}
		return r
	}
	<-p.done
	r := classify(p.exit(), p.killed.Load(), false, p.cfg.MemoryLimit, deadlineOf(m.Deadline, start))
	r.Duration = time.Since(start)
	return r
}

// RunPlain starts the plain executable c.Binary for m (value on stdin, the
// rest in FN_* variables) and runs it to its end, bounded by m.Deadline.
func RunPlain(c Config, m *pipe.Message) (*Proc, delivery.Result) {
	begun := time.Now()
	c.Env = append(slices.Clip(c.Env), PlainEnv(m)...)
	p, err := start(c, bytes.NewReader(m.Value))
	if err != nil {
		return nil, delivery.Failed(delivery.FailureStart, err)
	}
	p.SetLabel(Label(p.pid, m))
	p.armDeadline(m.Deadline)
	<-p.done
	r := classify(p.exit(), p.killed.Load(), true, c.MemoryLimit, deadlineOf(m.Deadline, begun))
	r.Duration = time.Since(begun)
	return p, r
}

// PlainEnv is the environment a plain executable gets for m: FN_TOPIC,
// FN_PARTITION, FN_OFFSET, FN_ATTEMPT, FN_KEY (when m has a key) and
// FN_HEADER_<NAME> for each header (upper case, other characters '_').
func PlainEnv(m *pipe.Message) []string {
	env := []string{"FN_TOPIC=" + m.Topic, "FN_PARTITION=" + strconv.Itoa(int(m.Partition)),
		"FN_OFFSET=" + strconv.FormatInt(m.Offset, 10), "FN_ATTEMPT=" + strconv.Itoa(m.Attempt)}
	if m.Key != nil {
		env = append(env, "FN_KEY="+string(m.Key))
	}
	for _, h := range m.Headers {
		env = append(env, "FN_HEADER_"+envName(h.Key)+"="+h.Value)
	}
	return env
}

// Label names an invocation in log lines: pid, topic/partition@offset and
// attempt.
func Label(pid int, m *pipe.Message) string {
	return fmt.Sprintf("pid=%d %s/%d@%d#%d", pid, m.Topic, m.Partition, m.Offset, m.Attempt)
}

func deadlineOf(deadline, start time.Time) time.Duration {
	if deadline.IsZero() {
		return 0
	}
	return deadline.Sub(start).Round(time.Millisecond)
}

// armDeadline kills the process group at deadline: SIGTERM, then SIGKILL
// after the grace period.
func (p *Proc) armDeadline(deadline time.Time) {
	if deadline.IsZero() {
		return
	}
	timer := time.AfterFunc(time.Until(deadline), func() {
		p.killed.Store(true)
		p.kill(syscall.SIGTERM)
		time.AfterFunc(p.cfg.grace(), func() { p.kill(syscall.SIGKILL) })
	})
	go func() {
		<-p.done
		timer.Stop()
	}()
}

// Wait waits for the process to exit and says how it ended.
func (p *Proc) Wait() *delivery.Exit {
	<-p.done
	return p.exit()
}

// Stop makes an idle process exit: closing its message pipe tells it it
// is not needed; SIGKILL follows if it does not go within the grace
// period.
func (p *Proc) Stop() {
	p.closePipes()
	select {
	case <-p.done:
	case <-time.After(p.cfg.grace()):
		p.kill(syscall.SIGKILL)
		<-p.done
	}
}

// kill signals the process's whole group, unless the process has been
// reaped (a deadline firing late must not hit whoever has its id now).
func (p *Proc) kill(sig syscall.Signal) {
	p.reapMu.Lock()
	defer p.reapMu.Unlock()
	if !p.reaped {
		_ = syscall.Kill(-p.pid, sig)
	}
}

func (p *Proc) closePipes() {
	if p.in != nil {
		p.in.Close()
	}
	if p.out != nil {
		p.out.Close()
	}
}

// exit describes how the process ended; call it after done.
func (p *Proc) exit() *delivery.Exit {
	e := &delivery.Exit{Code: -1, Stderr: p.tail.String()}
	st := p.state
	if st == nil {
		return e
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = unix.SignalName(ws.Signal())
		return e
	}
	e.Code = st.ExitCode()
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		e.MaxRSS = ru.Maxrss << 10 // kilobytes on Linux
	}
	return e
}

func (p *Proc) exitText() string { return exitText(p.exit()) }

func exitText(e *delivery.Exit) string {
	if e.Signal != "" {
		return "killed by " + e.Signal
	}
	if e.Code < 0 {
		return "unknown exit"
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

// classify says how an attempt ended whose process exited without
// reporting an outcome: killed at its deadline, over its memory limit,
// killed by a signal, or exited (a plain executable's only report; exit
// code 0 acknowledges).
func classify(e *delivery.Exit, killed, plain bool, memoryLimit int64, timeout time.Duration) delivery.Result {
	r := delivery.Result{Process: e}
	text := exitText(e)
	switch {
	case killed:
		r.Failure, r.Err = delivery.FailureTimeout, fmt.Errorf("timed out after %v (%s)", timeout, text)
	case plain && e.Code == 0:
		return delivery.Result{Process: e}
	case memoryLimit > 0 && overMemory(e, memoryLimit):
		r.Failure, r.Err = delivery.FailureMemory, fmt.Errorf("went over its memory limit of %d MiB (%s)", memoryLimit>>20, text)
	case e.Signal != "":
		r.Failure, r.Err = delivery.FailureSignal, fmt.Errorf("process %s", text)
	case plain:
		r.Failure, r.Err = delivery.FailureExit, fmt.Errorf("process ended with %s", text)
	default:
		r.Failure, r.Err = delivery.FailureCrash, fmt.Errorf("process ended with %s before reporting an outcome", text)
	}
	return r
}

// overMemory reports whether a failed process ran out of memory under its
// limit: it said so, or its peak resident memory came near the limit. A
// process refused memory fails in its own words (a Go runtime writes
// "out of memory", or faults inside the runtime), so both are checked.
func overMemory(e *delivery.Exit, limit int64) bool {
	s := strings.ToLower(e.Stderr)
	if strings.Contains(s, "out of memory") || strings.Contains(s, "cannot allocate memory") {
		return true
	}
	return e.MaxRSS >= limit*3/4
}

// copyOutput copies one output stream of the process to the log, each
// line prefixed with the time, the invocation and the stream's name, and
// to tail (unless nil), which keeps what dead letters carry.
func (p *Proc) copyOutput(r *os.File, stream string, tail *tailBuffer) {
	defer r.Close()
	w := p.cfg.Log
	br := newLineReader(r)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if tail != nil {
				tail.Write(line)
			}
			if w != nil {
				label := "pid=" + strconv.Itoa(p.pid)
				if l := p.label.Load(); l != nil {
					label = *l
				}
				buf := make([]byte, 0, len(label)+len(stream)+len(line)+40)
				buf = time.Now().UTC().AppendFormat(buf, "2006-01-02T15:04:05.000Z ")
				buf = append(append(append(append(buf, label...), ' '), stream...), " | "...)
				buf = append(buf, line...)
				if buf[len(buf)-1] != '\n' {
					buf = append(buf, '\n')
				}
				w.Write(buf)
			}
		}
		if err != nil && !errors.Is(err, errBufferFull) {
			return
		}
	}
}

// envName makes a header name usable as an environment variable name:
// upper case, other characters as '_'.
func envName(s string) string {
	b := []byte(strings.ToUpper(s))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return ": " + s
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
