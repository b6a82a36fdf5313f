package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/fnproto"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/testenv"
	"github.com/microfn/microfn/restarter"
)

// holeDaemon is `fnctl up` on the test broker, for the hole tests.
type holeDaemon struct {
	*upEmbedded
	brokers string
}

func startHoleDaemon(t *testing.T, state, api, brokers string) *holeDaemon {
	t.Helper()
	u := &upEmbedded{t: t, fnctl: build(t, "cmd/fnctl"), state: state, apiAddr: api}
	u.proc = startProc(t, "API on", u.fnctl, "up", "--state", state, "--brokers", brokers, "--listen", api)
	return &holeDaemon{upEmbedded: u, brokers: brokers}
}

// status returns the deployment's status as `fnctl ls -o json` gives it.
func (d *holeDaemon) status(name string) restarter.Status {
	d.t.Helper()
	var sts []restarter.Status
	if err := json.Unmarshal([]byte(d.ctl("ls", "-o", "json")), &sts); err != nil {
		d.t.Fatal(err)
	}
	for _, s := range sts {
		if s.Name == name {
			return s
		}
	}
	d.t.Fatalf("no deployment %s", name)
	return restarter.Status{}
}

// waitDegraded waits until the deployment is degraded with a hole.
func (d *holeDaemon) waitDegraded(name string) restarter.Status {
	d.t.Helper()
	deadline := time.Now().Add(settle)
	for {
		s := d.status(name)
		if s.State == "degraded" && len(s.Holes) > 0 {
			return s
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s not degraded within %v: %+v\n%s", name, settle, s, d.proc.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkReported checks that the hole shows everywhere: the status's
// holes, fnctl ls and fnctl status, the metric, and one error line.
func (d *holeDaemon) checkReported(name string, s restarter.Status, reason string) {
	d.t.Helper()
	for _, h := range s.Holes {
		if !strings.Contains(h.Reason, reason) {
			d.t.Errorf("hole %v: reason does not say %q", h, reason)
		}
	}
	if !strings.Contains(s.Reason, fmt.Sprintf("committed offset %d, log offsets %d to %d", s.Holes[0].Committed, s.Holes[0].LogStart, s.Holes[0].LogEnd)) {
		d.t.Errorf("reason %q does not give the offsets of %+v", s.Reason, s.Holes[0])
	}
	for _, cmd := range []string{"ls", "status"} {
		if out := d.ctl(cmd); !strings.Contains(out, name+": degraded: hole in ") {
			d.t.Errorf("fnctl %s does not show the hole:\n%s", cmd, out)
		}
	}
	resp, err := http.Get("http://" + d.apiAddr + "/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`microfn_holes_total{deployment=%q} %d`, name, s.HolesFound); s.HolesFound < 1 || !strings.Contains(string(body), want) {
		d.t.Errorf("metrics lack %q", want)
	}
	if n := strings.Count(d.proc.stderr.String(), "records the group had not processed are gone"); n != 1 {
		d.t.Errorf("%d error lines about the hole, want 1:\n%s", n, d.proc.stderr)
	}
}

// waitCommitted waits until the group has committed every partition of
// topic up to its end.
func waitCommitted(t *testing.T, brokers, group, topic string) {
	t.Helper()
	withAdmin(t, brokers, func(client sarama.Client, _ sarama.ClusterAdmin) {
		parts, err := client.Partitions(topic)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(settle)
		for {
			pos, err := kafka.Positions(client, group, topic, parts)
			if err != nil {
				t.Fatal(err)
			}
			done := true
			for _, p := range pos {
				done = done && (p.Committed == p.LogEnd || p.LogEnd == 0)
			}
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not committed within %v: %+v", topic, settle, pos)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// A deployment's topic deleted and created again while it runs: the log
// ends below the offset the group had committed. The deployment turns
// degraded with the partitions and offsets, the metric counts it, the
// daemon logs it once, and the new topic's messages are handled.
func TestDaemonHoleTopicRecreated(t *testing.T) {
	r := newRig(t)
	d := startHoleDaemon(t, t.TempDir(), freePort(t), r.env.Brokers)
	d.ctl("deploy", r.bin, "--name", "recreated", "--topic", r.topic, "--group", r.topic, "--pool", "2", "--env", "TESTFN_LOG="+r.logPath)
	// Every key gets 5 messages, so a partition with messages ends at 5
	// or more: above what the re-created topic will hold.
	r.publish("ok", 60, 12)
	r.waitFor(settle, "every message handled", r.allFinished, nil)
	waitCommitted(t, r.env.Brokers, r.topic, r.topic)
	if s := d.status("recreated"); s.State != "running" || s.Lag != 0 {
		t.Fatalf("before the hole: %+v", s)
	}

	withAdmin(t, r.env.Brokers, func(_ sarama.Client, admin sarama.ClusterAdmin) {
		if err := admin.DeleteTopic(r.topic); err != nil {
			t.Fatalf("delete %s: %v", r.topic, err)
		}
		// The consumer may create it again first, on its next metadata
		// request.
		err := admin.CreateTopic(r.topic, &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: -1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			t.Fatalf("create %s again: %v", r.topic, err)
		}
	})
	r.publish("ok", 4, 4)
	s := d.waitDegraded("recreated")
	d.checkReported("recreated", s, "created again")
	r.waitFor(settle, "the new topic's messages handled", r.allFinished, nil)
}

// Records the group had not processed removed (here with DeleteRecords,
// as retention would) while the daemon was down: at restart the
// deployment turns degraded and goes on from the log's oldest record.
func TestDaemonHoleRecordsRemoved(t *testing.T) {
	r := newRig(t)
	state, api := t.TempDir(), freePort(t)
	d := startHoleDaemon(t, state, api, r.env.Brokers)
	d.ctl("deploy", r.bin, "--name", "trimmed", "--topic", r.topic, "--group", r.topic, "--pool", "2", "--env", "TESTFN_LOG="+r.logPath)
	r.publish("ok", 8, 4)
	r.waitFor(settle, "every message handled", r.allFinished, nil)
	waitCommitted(t, r.env.Brokers, r.topic, r.topic)
	d.proc.stop()

	removed := r.publish("ok", 8, 4)
	deleteAllRecords(t, r.env.Brokers, r.topic)
	d = startHoleDaemon(t, state, api, r.env.Brokers)
	s := d.waitDegraded("trimmed")
	d.checkReported("trimmed", s, "records the group had not processed were removed")

	after := r.publish("ok", 4, 4)
	rep := r.waitFor(settle, "the messages after the hole handled", func(rep *report) bool {
		for _, m := range after {
			if rep.finished[m.id] == 0 {
				return false
			}
		}
		return true
	}, nil)
	for _, m := range removed {
		if rep.finished[m.id] > 0 {
			t.Errorf("%s was removed before it was handled, yet it ran", m.id)
		}
	}
}

// deleteAllRecords deletes every record of topic, as retention would.
func deleteAllRecords(t *testing.T, brokers, topic string) {
	t.Helper()
	withAdmin(t, brokers, func(client sarama.Client, admin sarama.ClusterAdmin) {
		parts, err := client.Partitions(topic)
		if err != nil {
			t.Fatal(err)
		}
		ends := map[int32]int64{}
		for _, p := range parts {
			if ends[p], err = client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
				t.Fatal(err)
			}
		}
		if err := admin.DeleteRecords(topic, ends); err != nil {
			t.Fatalf("delete records of %s: %v", topic, err)
		}
	})
}

// Standalone, a run whose partition lost records it had not processed
// says so on stderr and handles the next record there is.
func TestStandaloneReportsHole(t *testing.T) {
	env := testenv.Broker(t)
	bin := build(t, "tests/testfn")
	topic := testenv.Topic(t)
	logPath := filepath.Join(t.TempDir(), "log")
	k := []byte("k") // one partition
	produce(t, env.Brokers, topic, record{key: k, value: []byte("ok a1")}, record{key: k, value: []byte("ok a2")}, record{key: k, value: []byte("ok a3")})
	if r := run(t, runTimeout, bin, testfnEnv(env.Brokers, topic, logPath)); r.code != fnproto.ExitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	deleteAllRecords(t, env.Brokers, topic)
	produce(t, env.Brokers, topic, record{key: k, value: []byte("ok a4")})

	r := run(t, runTimeout, bin, testfnEnv(env.Brokers, topic, logPath))
	if r.code != fnproto.ExitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "records the group had not processed are gone") || !strings.Contains(r.stderr, "committed offset 1, log offsets 3 to 4") {
		t.Errorf("stderr does not report the hole:\n%s", r.stderr)
	}
	if log := readLog(t, logPath); len(log) != 2 || string(log[1].Value) != "ok a4" {
		t.Errorf("handled %d messages, the last %q; want a1 then a4", len(log), log[len(log)-1].Value)
	}
}
