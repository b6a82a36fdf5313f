package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/microfn/microfn/restarter"
)

// DefaultLogTail is how many lines of a log the API sends when the
// request does not say.
const DefaultLogTail = 100

// handleLogs sends the last ?tail=N lines of a deployment's log and, with
// ?follow=1, what is appended to it afterwards, until the client goes
// away, the daemon stops or the deployment is removed. The engine appends
// to the file; the daemon only reads it, so it polls instead of holding a
// channel into the engine.
func (d *daemon) handleLogs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	tail := DefaultLogTail
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, statusErrorf(http.StatusBadRequest, "tail must be a number of lines, at least 0, got %q", v))
			return
		}
		tail = n
	}
	follow := false
	if v := q.Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, statusErrorf(http.StatusBadRequest, "follow must be 0 or 1, got %q", v))
			return
		}
		follow = b
	}
	if err := checkName(name); err != nil {
		writeError(w, err)
		return
	}
	// Only known names reach the file system, so a name is never a path.
	if !d.known(name) {
		writeError(w, notFound(name))
		return
	}
	path := d.state.logPath(name)
	f, err := openLog(path, tail)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if follow {
		_ = rc.Flush() // the client sees the answer start even before any output
	}
	alive := func() bool { return d.known(name) }
	_ = streamLog(r.Context(), path, f, follow, d.logPoll, alive, w, rc.Flush)
}

// Logs writes the last tail lines of deployment name's log in the state
// directory root to w, as GET /v1/deployments/{name}/logs does but with
// no daemon: the log is a file. With follow it then writes what is
// appended until ctx is done or the deployment is removed. A name that is
// neither deployed nor has a log is restarter.ErrNotFound.
func Logs(ctx context.Context, root, name string, tail int, follow bool, w io.Writer) error {
	if err := restarter.ValidateName(name); err != nil {
		return err
	}
	s := &stateDir{root: root}
	deployed := func() bool { _, err := os.Stat(s.specPath(name)); return err == nil }
	path := s.logPath(name)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !deployed() {
		return fmt.Errorf("%w: %q in the state directory %s", restarter.ErrNotFound, name, root)
	}
	f, err := openLog(path, tail)
	if err != nil {
		return err
	}
	return streamLog(ctx, path, f, follow, fileLogPoll, deployed, w, func() error { return nil })
}

// fileLogPoll is how often Logs looks for appended output.
const fileLogPoll = 250 * time.Millisecond

// openLog opens the log at path positioned at its last tail lines; nil,
// nil when there is no log yet (no output so far).
func openLog(path string, tail int) (*os.File, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	start, err := lastLines(f, tail)
	if err == nil {
		_, err = f.Seek(start, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// streamLog copies f (nil: no log yet) to w and, with follow, keeps
// copying what is appended to path, across its appearing, truncation or
// replacement, every poll until ctx is done or alive reports false. flush
// follows every write.
func streamLog(ctx context.Context, path string, f *os.File, follow bool, poll time.Duration, alive func() bool, w io.Writer, flush func() error) error {
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	send := func() error {
		if f == nil {
			return nil
		}
		n, err := io.Copy(w, f)
		if n > 0 {
			if ferr := flush(); err == nil {
				err = ferr
			}
		}
		return err
	}
	if err := send(); err != nil || !follow {
		return err
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if !alive() {
			return send()
		}
		// Drain the file before reopen may switch to a new one.
		if err := send(); err != nil {
			return err
		}
		var err error
		if f, err = reopen(path, f); err != nil {
			return err
		}
		if err := send(); err != nil {
			return err
		}
	}
}

// reopen follows path across the file appearing, being truncated or being
// replaced (a rotated log), and returns the file to read on from, nil
// while there is none.
func reopen(path string, f *os.File) (*os.File, error) {
	cur, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	} else if err != nil {
		return f, err
	}
	if f != nil {
		fi, err := f.Stat()
		if err != nil {
			return f, err
		}
		if os.SameFile(fi, cur) {
			pos, err := f.Seek(0, io.SeekCurrent)
			if err == nil && fi.Size() < pos { // truncated: start over
				_, err = f.Seek(0, io.SeekStart)
			}
			return f, err
		}
		f.Close()
	}
	return os.Open(path)
}

// lastLines returns the offset where the last n lines of f begin. A line
// still being written (no final newline) counts as a line.
func lastLines(f *os.File, n int) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if n == 0 {
		return size, nil
	}
	buf := make([]byte, 32<<10)
	seen := 0
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return 0, err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			// The file's final newline ends its last line; it starts none.
			if chunk[i] != '\n' || start+int64(i) == size-1 {
				continue
			}
			if seen++; seen == n {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}
