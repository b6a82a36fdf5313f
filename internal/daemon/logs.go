package daemon

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"time"
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
	// Only known names reach the file system, so a name is never a path.
	if !d.known(name) {
		writeError(w, notFound(name))
		return
	}
	path := d.state.logPath(name)
	f, err := os.Open(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // not there yet: no output so far
		writeError(w, err)
		return
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	if f != nil {
		start, err := lastLines(f, tail)
		if err == nil {
			_, err = f.Seek(start, io.SeekStart)
		}
		if err != nil {
			writeError(w, err)
			return
		}
	}

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func() error {
		if f == nil {
			return nil
		}
		n, err := io.Copy(w, f)
		if n > 0 {
			if ferr := rc.Flush(); err == nil {
				err = ferr
			}
		}
		return err
	}
	if err := send(); err != nil || !follow {
		return
	}
	_ = rc.Flush() // the client sees the answer start even before any output

	tick := time.NewTicker(d.logPoll)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		if !d.known(name) {
			return
		}
		// Drain the file before reopen may switch to a new one.
		if err := send(); err != nil {
			return
		}
		if f, err = reopen(path, f); err != nil {
			return
		}
		if err := send(); err != nil {
			return
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
