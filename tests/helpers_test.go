// Package tests holds microfn's end-to-end tests. They run against a real
// Kafka-protocol broker chosen by internal/testenv: FN_TEST_BROKERS, a
// Docker Kafka with FN_TEST_DOCKER=1, or else the embedded broker.
package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/testenv"
	"github.com/microfn/microfn/internal/testlog"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "microfn-tests-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	testenv.Cleanup()
	testenv.CleanupSecure()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles a package of this module once per test binary and returns
// the executable's path. -race makes the function binaries race-check the
// framework code they run.
func build(t *testing.T, pkg string, tags ...string) string {
	t.Helper()
	return buildWith(t, true, pkg, tags...)
}

// buildWithoutRace builds pkg without the race detector, whose shadow
// memory a memory limit would not leave room for.
func buildWithoutRace(t *testing.T, pkg string, tags ...string) string {
	t.Helper()
	return buildWith(t, false, pkg, tags...)
}

func buildWith(t *testing.T, race bool, pkg string, tags ...string) string {
	t.Helper()
	name := strings.ReplaceAll(strings.TrimPrefix(pkg, "./"), "/", "_")
	if !race {
		name += "_norace"
	}
	if len(tags) > 0 {
		name += "_" + strings.Join(tags, "_")
	}
	out := filepath.Join(binDir, name)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, "../"+strings.TrimPrefix(pkg, "./"))...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// runResult is one run of a binary.
type runResult struct {
	code   int
	stdout string
	stderr string
}

// run runs bin with env added to the environment, bounded by timeout.
func run(t *testing.T, timeout time.Duration, bin string, env []string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not exit within %v\nstderr:\n%s", filepath.Base(bin), args, timeout, errb.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	return runResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// record is a message to produce.
type record struct {
	key     []byte
	value   []byte
	headers map[string]string
}

// testConfig is the tests' own client configuration: it never creates a
// topic by asking for it, so a topic that microfn should have created but
// did not stays missing, on a broker that auto-creates topics too.
func testConfig() *sarama.Config {
	c := kafka.Config("tests")
	c.Metadata.AllowAutoTopicCreation = false
	return c
}

// createTopic creates topic with the given partition count (-1: the
// broker's default), as a user creates the topics functions consume: a
// production Kafka often does not create topics on first use.
func createTopic(t *testing.T, brokers, topic string, partitions int32) {
	t.Helper()
	addrs, err := kafka.ParseBrokers(brokers)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdmin(addrs, testConfig())
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	defer admin.Close()
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// produce writes recs to topic, creating it with the broker's default
// partition count when it does not exist.
func produce(t *testing.T, brokers, topic string, recs ...record) {
	t.Helper()
	addrs, err := kafka.ParseBrokers(brokers)
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, brokers, topic, -1)
	p, err := sarama.NewSyncProducer(addrs, testConfig())
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, r := range recs {
		msgs[i] = kafka.ProducerMessage(topic, r.key, r.value, r.headers)
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// consumeAll reads topic from the beginning until want records arrived,
// failing after timeout. It waits for the topic to exist, and does not
// create it: microfn must have.
func consumeAll(t *testing.T, brokers, topic string, want int, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	deadline := time.After(timeout)
	addrs, _ := kafka.ParseBrokers(brokers)
	c, err := sarama.NewConsumer(addrs, testConfig())
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer c.Close()
	parts := waitTopic(t, c, topic, timeout)
	ch := make(chan *sarama.ConsumerMessage)
	done := make(chan struct{})
	defer close(done)
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				select {
				case ch <- m:
				case <-done:
					return
				}
			}
		}()
	}
	var got []*sarama.ConsumerMessage
	for len(got) < want {
		select {
		case m := <-ch:
			got = append(got, m)
		case <-deadline:
			t.Fatalf("%s: %d of %d records within %v", topic, len(got), want, timeout)
		}
	}
	return got
}

// waitTopic waits until topic exists and returns its partitions.
func waitTopic(t *testing.T, c sarama.Consumer, topic string, timeout time.Duration) []int32 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		parts, err := c.Partitions(topic)
		if err == nil && len(parts) > 0 {
			return parts
		}
		if !errors.Is(err, sarama.ErrUnknownTopicOrPartition) && err != nil {
			t.Fatalf("partitions of %s: %v", topic, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s does not exist after %v", topic, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type fnRecord = testlog.Record

// readLog returns the invocations in testfn's log: its "start" records.
func readLog(t *testing.T, path string) []fnRecord {
	t.Helper()
	var out []fnRecord
	for _, r := range readLogAll(t, path) {
		if r.Phase == "start" {
			out = append(out, r)
		}
	}
	return out
}

// readLogAll returns every record of testfn's log.
func readLogAll(t *testing.T, path string) []fnRecord {
	t.Helper()
	recs, err := testlog.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// testfnEnv is the environment of a testfn run on topic.
func testfnEnv(brokers, topic, logPath string, extra ...string) []string {
	return append([]string{"FN_BROKERS=" + brokers, "FN_TOPIC=" + topic, "FN_GROUP=" + topic, "TESTFN_LOG=" + logPath}, extra...)
}

func header(m *sarama.ConsumerMessage, k string) string {
	return kafka.Headers(m.Headers)[k]
}

// runUntilSignal starts bin, waits until a line of its stderr contains
// marker, sends sig, and returns the exit code and stderr.
func runUntilSignal(t *testing.T, bin string, env []string, marker string, sig os.Signal) (int, string) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var stderr strings.Builder
	seen := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), marker) {
				once = true
				close(seen)
			}
		}
	}()
	select {
	case <-seen:
	case <-time.After(runTimeout):
		cmd.Process.Kill()
		t.Fatalf("%s: no %q on stderr within %v", filepath.Base(bin), marker, runTimeout)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(runTimeout):
		cmd.Process.Kill()
		t.Fatalf("%s did not exit within %v of %v", filepath.Base(bin), runTimeout, sig)
	}
	<-readDone
	return cmd.ProcessState.ExitCode(), stderr.String()
}
