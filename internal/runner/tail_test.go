package runner

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log that several output copiers write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// What a process writes to stdout goes to the log only; what it writes to
// stderr goes to the log and to the tail that dead letters carry as
// fn_stderr. Every log line says which stream it came from.
func TestProcKeepsStdoutOutOfTheStderrTail(t *testing.T) {
	script := filepath.Join(t.TempDir(), "echo.sh")
	body := "#!/bin/sh\necho result on stdout\necho trouble on stderr >&2\necho more result\nexit 3\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	p, err := start(Config{Binary: script, Plain: true, Env: os.Environ(), Log: &log}, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill(9)
		t.Fatal("the script did not exit")
	}
	if got := p.tail.String(); got != "trouble on stderr\n" {
		t.Errorf("fn_stderr tail %q, want only stderr", got)
	}
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	want := map[string]string{"result on stdout": "stdout", "trouble on stderr": "stderr", "more result": "stdout"}
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT[\d:.]+Z pid=\d+ (stdout|stderr) \| (.*)$`)
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil || want[m[2]] != m[1] {
			t.Errorf("log line %q", l)
			continue
		}
		delete(want, m[2])
	}
	if len(want) > 0 {
		t.Errorf("log lacks %v:\n%s", want, log.String())
	}
}

func TestTailBufferKeepsHeadAndTail(t *testing.T) {
	b := &tailBuffer{max: 40}
	b.Write([]byte("fatal error: oom\n"))
	if got := b.String(); got != "fatal error: oom\n" {
		t.Fatalf("short output %q", got)
	}
	b.Write([]byte(strings.Repeat("x", 100) + "last line"))
	got := b.String()
	if !strings.HasPrefix(got, "fatal erro") || !strings.HasSuffix(got, "last line") || !strings.Contains(got, "[...]") {
		t.Fatalf("long output %q", got)
	}
	if len(got) > 40+len("\n[...]\n") {
		t.Fatalf("kept %d bytes, max 40", len(got))
	}
}
