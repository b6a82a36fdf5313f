package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/kafka"
)

// proc is a long-running fnctl command (broker or daemon) that the test
// kills or stops.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *syncBuffer
}

// syncBuffer collects a process's stderr for failure messages.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func (s *syncBuffer) write(line string) {
	s.mu <- struct{}{}
	s.b.WriteString(line + "\n")
	<-s.mu
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

// startProc runs bin with args and waits until a line of its stderr
// contains marker.
func startProc(t *testing.T, marker, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	p := &proc{t: t, cmd: cmd, exited: make(chan struct{}), stderr: &syncBuffer{mu: make(chan struct{}, 1)}}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			p.stderr.write(sc.Text())
			if !once && strings.Contains(sc.Text(), marker) {
				once = true
				close(ready)
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("%s %v exited at start: %v\n%s", filepath.Base(bin), args, cmd.ProcessState, p.stderr)
	case <-time.After(settle):
		t.Fatalf("%s %v: no %q within %v\n%s", filepath.Base(bin), args, marker, settle, p.stderr)
	}
	return p
}

// kill9 kills the process with SIGKILL and waits until it is gone.
func (p *proc) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	<-p.exited
}

// kcatProduce produces lines ("key:value") with acks=all and fails unless
// kcat reports every one delivered.
func kcatProduce(t *testing.T, kc, brokers, topic string, lines []string) {
	t.Helper()
	cmd := exec.Command(kc, "-P", "-b", brokers, "-t", topic, "-K:", "-X", "acks=all")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P %s: %v\n%s", topic, err, b)
	}
}

// What the embedded broker acknowledged survives a kill -9 of its process
// at any of these moments: records produced by kcat (acks=all) to topics
// created on first use and to existing ones, topics created, grown and
// deleted explicitly, and a group's committed offset with its metadata.
func TestEmbeddedBrokerSurvivesKill9(t *testing.T) {
	kc := kcat(t)
	fnctl := build(t, "cmd/fnctl")
	data := t.TempDir()
	addr := freePort(t)
	start := func() *proc {
		return startProc(t, "listening on", fnctl, "broker", "--data", data, "--listen", addr)
	}
	rounds := 8
	if testing.Short() {
		rounds = 5
	}
	const group = "crash-group"
	// The broker is the test's own, so the names need not be unique.
	const main, explicit, deleted = "main", "explicit", "new1"
	want := map[string][]string{} // topic → values acknowledged
	var commit kafka.Commit

	b := start()
	for round := range rounds {
		fresh := fmt.Sprintf("new%d", round)
		for _, topic := range []string{fresh, main} {
			var lines []string
			for i := range 20 {
				v := fmt.Sprintf("%s-r%d-%d", topic, round, i)
				lines = append(lines, fmt.Sprintf("k%d:%s", i%5, v))
				want[topic] = append(want[topic], v)
			}
			kcatProduce(t, kc, addr, topic, lines)
		}
		withAdmin(t, addr, func(client sarama.Client, admin sarama.ClusterAdmin) {
			switch round {
			case 0:
				if err := admin.CreateTopic(explicit, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
					t.Fatalf("create %s: %v", explicit, err)
				}
			case 1:
				if err := admin.CreatePartitions(explicit, 3, nil, false); err != nil {
					t.Fatalf("add partitions to %s: %v", explicit, err)
				}
			case 2:
				if err := admin.DeleteTopic(deleted); err != nil {
					t.Fatalf("delete %s: %v", deleted, err)
				}
				delete(want, deleted)
			}
			commit = kafka.Commit{Topic: main, Partition: int32(round % 4), Offset: int64(round + 1), Metadata: fmt.Sprintf("fn1;d:%d-%d", round+3, round+4)}
			if err := kafka.CommitOffsets(client, group, -1, "", []kafka.Commit{commit}); err != nil {
				t.Fatalf("commit: %v", err)
			}
		})
		b.kill9()
		b = start()
		checkBrokerKept(t, kc, addr, want, round, group, commit)
	}
}

// withAdmin runs f with a sarama client and admin on brokers.
func withAdmin(t *testing.T, brokers string, f func(sarama.Client, sarama.ClusterAdmin)) {
	t.Helper()
	addrs, _ := kafka.ParseBrokers(brokers)
	client, err := sarama.NewClient(addrs, kafka.Config("tests"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	f(client, admin)
}

// checkBrokerKept checks, after a restart, that every acknowledged record
// is readable, the explicit topic has its partitions, deleted topics stay
// deleted, and the group's last commit is there with its metadata.
func checkBrokerKept(t *testing.T, kc, addr string, want map[string][]string, round int, group string, commit kafka.Commit) {
	t.Helper()
	for topic, values := range want {
		var got []string
		for _, r := range kcatConsume(t, kc, addr, topic, len(values)) {
			got = append(got, string(r.value))
		}
		slices.Sort(got)
		exp := slices.Sorted(slices.Values(values))
		if !slices.Equal(got, exp) {
			t.Fatalf("after kill -9 #%d, %s holds %d records, want the %d acknowledged:\ngot  %v\nwant %v",
				round+1, topic, len(got), len(exp), got, exp)
		}
	}
	withAdmin(t, addr, func(client sarama.Client, admin sarama.ClusterAdmin) {
		topics, err := admin.ListTopics()
		if err != nil {
			t.Fatal(err)
		}
		wantParts := int32(2)
		if round >= 1 {
			wantParts = 3
		}
		if d, ok := topics["explicit"]; !ok || d.NumPartitions != wantParts {
			t.Fatalf("after kill -9 #%d, topic explicit: %+v (exists %v), want %d partitions", round+1, d, ok, wantParts)
		}
		if round >= 2 {
			if _, ok := topics["new1"]; ok {
				t.Fatalf("after kill -9 #%d, the deleted topic is back", round+1)
			}
		}
		got, err := kafka.FetchCommitted(client, group, commit.Topic, []int32{commit.Partition})
		if err != nil {
			t.Fatal(err)
		}
		if c := got[commit.Partition]; c.Offset != commit.Offset || c.Metadata != commit.Metadata {
			t.Fatalf("after kill -9 #%d, committed %d %q, want %d %q", round+1, c.Offset, c.Metadata, commit.Offset, commit.Metadata)
		}
	})
}
