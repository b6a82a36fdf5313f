package tests

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/microfn/microfn/broker"
	"github.com/microfn/microfn/internal/fnproto"
	"github.com/microfn/microfn/internal/testenv"
)

// The embedded broker keeps records and committed offsets across a
// restart: after it, the records are all there and the function resumes
// after the message it had committed.
func TestEmbeddedBrokerKeepsRecordsAndOffsetsAcrossRestart(t *testing.T) {
	testenv.EmbeddedPassOnly(t)
	bin := build(t, "tests/testfn")
	data := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "log")
	topic := "persist"

	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: data, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, e.Addr(), topic, record{value: []byte("ok 1")}, record{value: []byte("ok 2")}, record{value: []byte("ok 3")})
	if r := run(t, runTimeout, bin, testfnEnv(e.Addr(), topic, logPath)); r.code != fnproto.ExitOK {
		e.Close()
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	e.Close()

	e, err = broker.StartEmbedded(broker.EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: data, Partitions: 1})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer e.Close()
	if got := consumeAll(t, e.Addr(), topic, 3, 30*time.Second); string(got[2].Value) != "ok 3" {
		t.Fatalf("after restart the third record is %q", got[2].Value)
	}
	if r := run(t, runTimeout, bin, testfnEnv(e.Addr(), topic, logPath)); r.code != fnproto.ExitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	log := readLog(t, logPath)
	if len(log) != 2 || string(log[1].Value) != "ok 2" || log[1].Offset != 1 {
		t.Fatalf("after restart the function handled %+v, want the record at offset 1", log[len(log)-1])
	}
}
