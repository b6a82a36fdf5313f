package runner

import (
	"bufio"
	"io"
	"sync"
)

var errBufferFull = bufio.ErrBufferFull

func newLineReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 16<<10) }

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
