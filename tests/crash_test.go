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
	"github.com/microfn/microfn/internal/testenv"
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

// stop stops the process with SIGTERM and waits until it has exited 0.
func (p *proc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(settle):
		p.t.Fatalf("no exit within %v of SIGTERM\n%s", settle, p.stderr)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("exit code %d after SIGTERM\n%s", code, p.stderr)
	}
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

// upEmbedded is `fnctl up` with its embedded broker, restartable on the
// same state directory and ports.
type upEmbedded struct {
	t                   *testing.T
	fnctl, state        string
	brokerAddr, apiAddr string
	proc                *proc
}

func (u *upEmbedded) start() {
	u.t.Helper()
	u.proc = startProc(u.t, "API on", u.fnctl, "up", "--state", u.state, "--broker-listen", u.brokerAddr, "--listen", u.apiAddr)
}

func (u *upEmbedded) ctl(args ...string) string {
	u.t.Helper()
	r := run(u.t, settle, u.fnctl, []string{"FN_SERVER=" + u.apiAddr}, args...)
	if r.code != 0 {
		u.t.Fatalf("fnctl %v: exit %d\n%s", args, r.code, r.stderr)
	}
	return r.stdout
}

// children lists the pids whose parent is pid.
func children(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		var c int
		if _, err := fmt.Sscan(e.Name(), &c); err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		var state string
		var ppid int
		if i < 0 {
			continue
		}
		if _, err := fmt.Sscan(s[i+1:], &state, &ppid); err == nil && ppid == pid {
			out = append(out, c)
		}
	}
	return out
}

// keyOverlaps lists keys two of whose invocations ran at the same time.
func keyOverlaps(rep *report) []string {
	byKey := map[string][]invocation{}
	for _, inv := range rep.invs {
		if inv.key != "" && inv.end != 0 {
			byKey[inv.key] = append(byKey[inv.key], inv)
		}
	}
	var out []string
	for key, invs := range byKey {
		slices.SortFunc(invs, func(a, b invocation) int { return int(a.start - b.start) })
		for i := 1; i < len(invs); i++ {
			if invs[i].start < invs[i-1].end {
				out = append(out, key)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// fnctl up with its embedded broker, killed -9 under keyed load at varied
// moments and restarted each time (once stopped cleanly instead): every
// published message is handled, at most the messages in flight at each
// kill run twice, no two messages of a key run at once, no function
// process outlives the daemon, and after every restart the waiting
// messages start within seconds. Before the broker recorded topics
// created on first use, the first kill lost the waiting messages, and
// messages published after it stalled.
func TestDaemonEmbeddedBrokerSurvivesKill9(t *testing.T) {
	fnctl := build(t, "cmd/fnctl")
	u := &upEmbedded{t: t, fnctl: fnctl, state: t.TempDir(), brokerAddr: freePort(t), apiAddr: freePort(t)}
	topic := "orders"
	r := &rig{t: t, env: &testenv.Env{Kind: "fnctl up", Brokers: u.brokerAddr}, bin: build(t, "tests/testfn"),
		topic: topic, logPath: filepath.Join(t.TempDir(), "log")}
	const pool = 4
	// Messages handled since the last restart when the daemon is killed
	// (stopped with SIGTERM when negative).
	moments := []int{25, 1, 60, -20, 7, 40, 3, 90, 15}
	perRound := 40
	if testing.Short() {
		moments = moments[:6]
		perRound = 20
	}
	kills := 0
	u.start()
	u.ctl("deploy", r.bin, "--name", "crash", "--topic", topic, "--pool", fmt.Sprint(pool), "--env", "TESTFN_LOG="+r.logPath)
	for k, moment := range moments {
		// More than will be handled before the kill: messages wait
		// across it.
		r.publish("sleep=10ms", abs(moment)+perRound, 16)
		before := len(analyse(readLogAll(t, r.logPath)).finished)
		r.waitFor(settle, fmt.Sprintf("%d messages handled before stop %d", abs(moment), k+1), func(rep *report) bool {
			return len(rep.finished) >= before+abs(moment)
		}, nil)
		pids := children(t, u.proc.cmd.Process.Pid)
		if len(pids) == 0 {
			t.Fatalf("stop %d: the daemon has no function processes", k+1)
		}
		how := "kill -9"
		if moment < 0 {
			how = "SIGTERM"
			u.proc.stop()
		} else {
			kills++
			u.proc.kill9()
		}
		waitGone(t, pids...) // no function process outlives the daemon
		waiting := len(r.sent) - len(analyse(readLogAll(t, r.logPath)).finished)

		restarted := time.Now().UnixNano()
		u.start()
		if waiting == 0 { // a slow poll let them all finish before the stop
			r.publish("sleep=10ms", perRound, 16)
		}
		// A stall (nothing handled for minutes) must not pass: a restart
		// takes well under a second here.
		const resumeWithin = 30 * time.Second
		rep := r.waitFor(resumeWithin, fmt.Sprintf("waiting message started after %s #%d (a stall)", how, k+1), func(rep *report) bool {
			return len(rep.invs) > 0 && rep.invs[len(rep.invs)-1].start > restarted
		}, nil)
		first := rep.invs[len(rep.invs)-1].start
		for _, inv := range rep.invs {
			if inv.start > restarted {
				first = min(first, inv.start)
			}
		}
		t.Logf("%s after %d handled: the first waiting message started %v after the restart began",
			how, abs(moment), time.Duration(first-restarted).Round(time.Millisecond))
	}
	rep := r.waitFor(settle, "every message handled", r.allFinished, nil)
	if dups := duplicates(rep); len(dups) > kills*pool {
		t.Errorf("%d messages ran twice, more than %d kills × pool %d: %v", len(dups), kills, pool, dups)
	}
	if o := keyOverlaps(rep); len(o) > 0 {
		t.Errorf("keys with two messages running at once: %v", o)
	}
	t.Logf("%s, %d duplicates after %d kills", rep, len(duplicates(rep)), kills)
}

func abs(n int) int { return max(n, -n) }
