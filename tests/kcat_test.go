package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/microfn/microfn/internal/fnproto"
	"github.com/microfn/microfn/internal/testenv"
)

// kcat returns kcat's path, skipping the test when it is not installed
// (failing instead when FN_REQUIRE_KCAT=1, as CI sets it).
func kcat(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("FN_REQUIRE_KCAT") == "1" {
			t.Fatal("kcat is not installed and FN_REQUIRE_KCAT=1")
		}
		t.Skip("kcat not installed: apt-get install kcat to run the interoperability tests")
	}
	return p
}

// kcatRecord is a record as kcat printed it.
type kcatRecord struct {
	key, value       []byte
	nullKey, nullVal bool
	headers          string
}

// kcatConsume reads n records of topic with kcat, with a format that
// carries lengths so binary keys and values survive exactly.
func kcatConsume(t *testing.T, bin, brokers, topic string, n int) []kcatRecord {
	t.Helper()
	cmd := exec.Command(bin, "-C", "-b", brokers, "-t", topic, "-o", "beginning", "-c", strconv.Itoa(n),
		"-e", "-q", "-f", "%K|%k|%S|%s|%h\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("kcat -C: %v\n%s", err, errb.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("kcat -C did not read %d records of %s within 60s", n, topic)
	}
	b := out.Bytes()
	var recs []kcatRecord
	field := func(length bool) (int, []byte) {
		i := bytes.IndexByte(b, '|')
		f := b[:i]
		b = b[i+1:]
		if !length {
			return 0, f
		}
		n, err := strconv.Atoi(string(f))
		if err != nil {
			t.Fatalf("kcat output: bad length %q", f)
		}
		return n, nil
	}
	for len(b) > 0 {
		var r kcatRecord
		kl, _ := field(true)
		r.nullKey = kl < 0
		r.key = append([]byte{}, b[:max(kl, 0)]...)
		b = b[max(kl, 0)+1:]
		vl, _ := field(true)
		r.nullVal = vl < 0
		r.value = append([]byte{}, b[:max(vl, 0)]...)
		b = b[max(vl, 0)+1:]
		i := bytes.IndexByte(b, '\n')
		r.headers = string(b[:i])
		b = b[i+1:]
		recs = append(recs, r)
	}
	return recs
}

// What kcat (librdkafka) produces reaches a function byte for byte: keys,
// headers, empty and null values, binary data.
func TestKcatProducedReachesFunctionExactly(t *testing.T) {
	kc := kcat(t)
	env := testenv.Broker(t)
	bin := build(t, "tests/testfn")
	topic := testenv.Topic(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log")

	binary := []byte{0, 1, 2, '\n', 0xff, 0xfe, '|', 0}
	cases := []struct {
		name  string
		args  []string
		value []byte
		null  bool
	}{
		{"text with key and headers", []string{"-k", "key-1", "-H", "h1=v1", "-H", "h2="}, []byte("ok text"), false},
		{"binary", []string{"-k", "key-2"}, binary, false},
		// kcat skips an empty file: empty and null values go through stdin
		// as "key:" lines, -Z turning the empty value into a null.
		{"empty value", []string{"-K:"}, []byte{}, false},
		{"null value", []string{"-K:", "-Z"}, nil, true},
	}
	createTopic(t, env.Brokers, topic, -1) // kcat, like most clients, does not create topics
	for i, c := range cases {
		// All on partition 0 so they keep their order.
		args := append([]string{"-P", "-b", env.Brokers, "-t", topic, "-p", "0"}, c.args...)
		cmd := exec.Command(kc, args...)
		if c.args[0] == "-K:" {
			cmd.Stdin = bytes.NewReader([]byte("key-" + strconv.Itoa(i+1) + ":\n"))
		} else {
			// One file is one message, byte for byte.
			file := filepath.Join(dir, strconv.Itoa(i))
			if err := os.WriteFile(file, c.value, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd.Args = append(cmd.Args, file)
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P %s: %v\n%s", c.name, err, b)
		}
	}
	for range cases {
		if r := run(t, runTimeout, bin, testfnEnv(env.Brokers, topic, logPath)); r.code != fnproto.ExitOK {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
	}
	log := readLog(t, logPath)
	if len(log) != len(cases) {
		t.Fatalf("%d invocations, want %d", len(log), len(cases))
	}
	for i, c := range cases {
		got := log[i]
		if !bytes.Equal(got.Value, c.value) || got.Null != c.null {
			t.Errorf("%s: value %q (null %v), want %q (null %v)", c.name, got.Value, got.Null, c.value, c.null)
		}
		if got.Key == nil || *got.Key != "key-"+strconv.Itoa(i+1) {
			t.Errorf("%s: key %v", c.name, got.Key)
		}
	}
	if h := log[0].Headers; h["h1"] != "v1" || len(h) != 2 {
		t.Errorf("headers %v, want h1=v1 and an empty h2", h)
	} else if v, ok := h["h2"]; !ok || v != "" {
		t.Errorf("header h2 = %q (present %v), want empty", v, ok)
	}
}

// What fnctl publish writes and what fn.Emit publishes, kcat reads byte
// for byte.
func TestKcatReadsWhatMicrofnWrites(t *testing.T) {
	kc := kcat(t)
	env := testenv.Broker(t)
	fnctl := build(t, "cmd/fnctl")
	bin := build(t, "tests/testfn")
	topic := testenv.Topic(t)
	out := topic + "-out"

	r := run(t, runTimeout, fnctl, []string{"FN_BROKERS=" + env.Brokers}, "publish", topic, "emit="+out+" héllo", "--key", "k é", "--header", "a=b=c")
	if r.code != 0 {
		t.Fatalf("fnctl publish: exit %d\n%s", r.code, r.stderr)
	}
	got := kcatConsume(t, kc, env.Brokers, topic, 1)[0]
	if string(got.key) != "k é" || string(got.value) != "emit="+out+" héllo" || got.headers != "a=b=c" {
		t.Fatalf("kcat read key %q value %q headers %q", got.key, got.value, got.headers)
	}

	if r := run(t, runTimeout, bin, testfnEnv(env.Brokers, topic, filepath.Join(t.TempDir(), "log"))); r.code != fnproto.ExitOK {
		t.Fatalf("testfn exit %d\n%s", r.code, r.stderr)
	}
	got = kcatConsume(t, kc, env.Brokers, out, 1)[0]
	if string(got.key) != "k é" || string(got.value) != "emit="+out+" héllo" || got.headers != "from=testfn" {
		t.Fatalf("kcat read the emitted event as key %q value %q headers %q", got.key, got.value, got.headers)
	}

	r = run(t, runTimeout, fnctl, []string{"FN_BROKERS=" + env.Brokers}, "publish", topic+"-null", "--null", "--key", "tomb")
	if r.code != 0 {
		t.Fatalf("fnctl publish --null: exit %d\n%s", r.code, r.stderr)
	}
	if got := kcatConsume(t, kc, env.Brokers, topic+"-null", 1)[0]; !got.nullVal || string(got.key) != "tomb" {
		t.Fatalf("kcat read %+v, want a null value with key tomb", got)
	}
}
