package restarter

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/microfn/microfn/internal/pipe"
)

// proc is one function process: started ahead of time, given one message,
// reaped when it exits.
type proc struct {
	cmd  *exec.Cmd
	pid  int
	in   *os.File // the restarter's end of the process's message pipe
	out  *os.File // the restarter's end of the process's outcome pipe
	tail *tailBuffer

	// label prefixes the process's log lines; set at dispatch.
	label atomic.Pointer[string]

	done chan struct{} // closed when the process has exited and its output is drained
	// reapMu orders kill against reaping: once the leader is reaped its
	// pid, and so its group id, may belong to another process.
	reapMu  sync.Mutex
	reaped  bool
	state   *os.ProcessState
	killed  atomic.Bool // the restarter killed it at its deadline
	started time.Time
}

// startProc starts a function process. For an fn binary, the process gets
// its pipes as fds 3 and 4; for a plain one, stdin is the value pipe.
// Every process leads its own process group, so a timeout kills what it
// started too, and dies with the restarter (PDEATHSIG).
func startProc(s Spec, env []string, logw io.Writer, stdin io.Reader) (*proc, error) {
	cmd := exec.Command(s.Binary, s.Args...)
	cmd.Env = slices.Clip(env) // appends below must not share the caller's array
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The tail of stderr goes into the dead letter's 4 KiB fn_stderr header.
	p := &proc{cmd: cmd, tail: &tailBuffer{max: 4<<10 - len(elision)}, done: make(chan struct{})}

	var childEnds []*os.File
	if !s.Plain {
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

	p.started = time.Now()
	err = cmd.Start()
	closeAll(childEnds) // the child has its copies; ours would hide EOF
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		p.closePipes()
		return nil, fmt.Errorf("start %s: %w", s.Binary, err)
	}
	p.pid = cmd.Process.Pid
	if s.MemoryLimit > 0 {
		// RLIMIT_DATA, not RLIMIT_AS: a Go runtime reserves far more
		// address space than it uses and would not even start under an
		// address-space limit; the data limit counts what is mapped
		// writable, which is what a leak grows.
		lim := &unix.Rlimit{Cur: uint64(s.MemoryLimit), Max: uint64(s.MemoryLimit)}
		if err := unix.Prlimit(p.pid, unix.RLIMIT_DATA, lim, nil); err != nil {
			p.kill(syscall.SIGKILL)
		}
	}
	var copied sync.WaitGroup
	copied.Add(2)
	go func() {
		defer copied.Done()
		p.copyOutput(stdoutR, logw, "stdout", nil)
	}()
	go func() {
		defer copied.Done()
		p.copyOutput(stderrR, logw, "stderr", p.tail)
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

// copyOutput copies one output stream of the process to the deployment
// log, each line prefixed with the time, the invocation and the stream's
// name, and to tail (unless nil), which keeps what dead letters carry.
func (p *proc) copyOutput(r *os.File, w io.Writer, stream string, tail *tailBuffer) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 16<<10)
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
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// kill signals the process's whole group, unless the process has been
// reaped (a deadline firing late must not hit whoever has its id now).
func (p *proc) kill(sig syscall.Signal) {
	p.reapMu.Lock()
	defer p.reapMu.Unlock()
	if !p.reaped {
		_ = syscall.Kill(-p.pid, sig)
	}
}

// stop makes an idle process exit: closing its message pipe tells it it
// is not needed; SIGKILL follows if it does not go within grace.
func (p *proc) stop(grace time.Duration) {
	p.closePipes()
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill(syscall.SIGKILL)
		<-p.done
	}
}

func (p *proc) closePipes() {
	if p.in != nil {
		p.in.Close()
	}
	if p.out != nil {
		p.out.Close()
	}
}

// exitDescription says how the process ended: exit code or signal.
func (p *proc) exitDescription() (code int, signal string, text string) {
	st := p.state
	if st == nil {
		return -1, "", "unknown exit"
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := ws.Signal()
		return -1, unix.SignalName(sig), fmt.Sprintf("killed by %s", unix.SignalName(sig))
	}
	return st.ExitCode(), "", fmt.Sprintf("exit code %d", st.ExitCode())
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

const elision = "\n[...]\n"

// tailBuffer keeps the first and the last bytes written, up to max in
// all: a crash says what went wrong first (a Go fatal error's cause leads
// its dump) and where it ended last.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	head    []byte
	tail    []byte
	dropped bool
}

func (t *tailBuffer) Write(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	headMax := t.max / 4
	if n := min(headMax-len(t.head), len(p)); n > 0 {
		t.head = append(t.head, p[:n]...)
		p = p[n:]
	}
	t.tail = append(t.tail, p...)
	if keep := t.max - headMax; len(t.tail) > keep {
		t.tail = append(t.tail[:0], t.tail[len(t.tail)-keep:]...)
		t.dropped = true
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dropped {
		return string(t.head) + elision + string(t.tail)
	}
	return string(t.head) + string(t.tail)
}
