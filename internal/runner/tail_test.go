package runner

import (
	"strings"
	"testing"
)

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
