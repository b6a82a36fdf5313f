package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/microfn/microfn/internal/daemon"
	"github.com/microfn/microfn/internal/holes"
	"github.com/microfn/microfn/restarter"
)

// parse runs cmd's flag parsing on args; run captures the options.
func parse(t *testing.T, cmd *cobra.Command, args ...string) error {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	return cmd.Execute()
}

func TestUpFlags(t *testing.T) {
	t.Setenv("FN_STATE", "/state")
	var got UpOptions
	run := func(_ context.Context, o UpOptions) error { got = o; return nil }
	if err := parse(t, newCmdUp(IO{}, run)); err != nil {
		t.Fatal(err)
	}
	if got.StateDir != "/state" || got.Brokers != "" || got.BrokerListen != "127.0.0.1:9092" || got.Listen != "127.0.0.1:7077" || got.Token != "" || got.BrokerSync {
		t.Errorf("defaults %+v", got)
	}
	err := parse(t, newCmdUp(IO{}, run), "--state", "/s", "--brokers", "k:9092", "--broker-listen", "127.0.0.1:1", "--listen", "0.0.0.0:2", "--token", "t", "--sync")
	if err != nil || got.StateDir != "/s" || got.Brokers != "k:9092" || got.BrokerListen != "127.0.0.1:1" || got.Listen != "0.0.0.0:2" || got.Token != "t" || !got.BrokerSync {
		t.Errorf("err %v, options %+v", err, got)
	}
}

func TestBrokerFlags(t *testing.T) {
	t.Setenv("FN_STATE", "/state")
	var got BrokerOptions
	run := func(_ context.Context, o BrokerOptions) error { got = o; return nil }
	if err := parse(t, newCmdBroker(IO{}, run)); err != nil {
		t.Fatal(err)
	}
	if got.DataDir != "/state/broker" || got.Listen != "127.0.0.1:9092" || got.Partitions != 4 || got.Sync || got.Recover {
		t.Errorf("defaults %+v", got)
	}
	if err := parse(t, newCmdBroker(IO{}, run), "--data", "/d", "--sync", "--recover"); err != nil || got.DataDir != "/d" || !got.Sync || !got.Recover {
		t.Errorf("err %v, options %+v", err, got)
	}
}

func TestUpReadyLine(t *testing.T) {
	for _, c := range []struct {
		r    daemon.Ready
		from string
		want string
	}{
		{daemon.Ready{API: "127.0.0.1:7077", Broker: daemon.BrokerInfo{Kind: "embedded", Addrs: []string{"127.0.0.1:9092"}, Reachable: true},
			StateDir: "/s", Restored: 2}, "",
			"fnctl daemon: API on 127.0.0.1:7077, embedded broker on 127.0.0.1:9092, state in /s, 2 deployment(s) restored"},
		{daemon.Ready{API: "0.0.0.0:7077", Broker: daemon.BrokerInfo{Kind: "external", Addrs: []string{"k1:9092", "k2:9092"}},
			StateDir: "/s", Restored: 1, Failed: []string{"a", "b"}}, "FN_BROKERS",
			"fnctl daemon: API on 0.0.0.0:7077, Kafka at k1:9092,k2:9092 (from FN_BROKERS) (unreachable), state in /s, 1 deployment(s) restored, 2 failed (a, b): see fnctl ls"},
		{daemon.Ready{API: "127.0.0.1:7077", Broker: daemon.BrokerInfo{Kind: "external", Addrs: []string{"k1:9093"}, Security: "TLS SASL SCRAM-SHA-512 as fn", Reachable: true},
			StateDir: "/s"}, "--brokers",
			"fnctl daemon: API on 127.0.0.1:7077, Kafka at k1:9093 over TLS SASL SCRAM-SHA-512 as fn (from --brokers), state in /s, 0 deployment(s) restored"},
	} {
		if got := readyLine(c.r, c.from); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

func TestDaemonCommandFlags(t *testing.T) {
	t.Run("ls", func(t *testing.T) {
		var got LsOptions
		err := parse(t, newCmdLs(IO{}, func(_ context.Context, o LsOptions) error { got = o; return nil }), "-o", "json", "--server", "h:1", "--token", "x")
		if err != nil || got.Output != "json" || got.Server != "h:1" || got.Token != "x" {
			t.Errorf("err %v, options %+v", err, got)
		}
	})
	t.Run("rm", func(t *testing.T) {
		var got RmOptions
		err := parse(t, newCmdRm(IO{}, func(_ context.Context, o RmOptions) error { got = o; return nil }), "greeter")
		if err != nil || got.Name != "greeter" {
			t.Errorf("err %v, options %+v", err, got)
		}
	})
	t.Run("scale", func(t *testing.T) {
		var got ScaleOptions
		err := parse(t, newCmdScale(IO{}, func(_ context.Context, o ScaleOptions) error { got = o; return nil }), "greeter", "--pool", "8")
		if err != nil || got.Name != "greeter" || got.Pool != 8 {
			t.Errorf("err %v, options %+v", err, got)
		}
	})
	t.Run("logs", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("FN_STATE", "/state")
		var got LogsOptions
		run := func(_ context.Context, o LogsOptions) error { got = o; return nil }
		// The state directory as `fnctl up` finds it, unless a daemon is named.
		if err := parse(t, newCmdLogs(IO{}, run), "greeter"); err != nil || got.Name != "greeter" || got.Follow || got.Lines != 100 || got.StateDir != "/state" {
			t.Errorf("err %v, options %+v", err, got)
		}
		if err := parse(t, newCmdLogs(IO{}, run), "greeter", "-f", "-n", "0", "--state", "/s"); err != nil || !got.Follow || got.Lines != 0 || got.StateDir != "/s" {
			t.Errorf("err %v, options %+v", err, got)
		}
		if err := parse(t, newCmdLogs(IO{}, run), "greeter", "--server", "h:1"); err != nil || got.StateDir != "" || got.Server != "h:1" {
			t.Errorf("err %v, options %+v", err, got)
		}
		t.Setenv("FN_SERVER", "h:2")
		if err := parse(t, newCmdLogs(IO{}, run), "greeter"); err != nil || got.StateDir != "" {
			t.Errorf("with FN_SERVER: err %v, options %+v", err, got)
		}
	})
	t.Run("status", func(t *testing.T) {
		var got StatusOptions
		err := parse(t, newCmdStatus(IO{}, func(_ context.Context, o StatusOptions) error { got = o; return nil }), "-o", "json")
		if err != nil || got.Output != "json" {
			t.Errorf("err %v, options %+v", err, got)
		}
	})
}

// fakeDaemon answers the API with fixed statuses.
func fakeDaemon(t *testing.T, sts []restarter.Status) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/deployments", func(w http.ResponseWriter, _ *http.Request) { json.NewEncoder(w).Encode(sts) })
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(daemon.Overview{
			Daemon:      daemon.DaemonInfo{PID: 42, StateDir: "/state", Uptime: restarter.Duration(90e9), Version: "devel"},
			Broker:      daemon.BrokerInfo{Kind: "embedded", Addrs: []string{"127.0.0.1:9092"}, Reachable: true},
			Deployments: sts,
		})
	})
	mux.HandleFunc("GET /v1/deployments/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.PathValue("name") + " tail=" + r.URL.Query().Get("tail") + " follow=" + r.URL.Query().Get("follow") + "\n"))
	})
	mux.HandleFunc("POST /v1/deployments/{name}/scale", func(w http.ResponseWriter, r *http.Request) {
		var req daemon.ScaleRequest
		json.NewDecoder(r.Body).Decode(&req)
		lo, hi := req.MinPool, req.MaxPool
		if req.Pool > 0 {
			lo, hi = req.Pool, req.Pool
		}
		json.NewEncoder(w).Encode(restarter.Status{Name: r.PathValue("name"), Topic: "names", Group: "g", Pool: lo, State: "running",
			Spec: restarter.Spec{MinPool: lo, MaxPool: hi}})
	})
	mux.HandleFunc("DELETE /v1/deployments/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":"no such deployment: \"` + r.PathValue("name") + `\""}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestDaemonCommandsOutput(t *testing.T) {
	sts := []restarter.Status{
		{Name: "greeter", Topic: "names", Pool: 2, Warm: 2, InFlight: 1, Processed: 10, Failed: 3, DeadLettered: 1, Restarts: 0, Lag: 4, State: "running"},
		{Name: "resize", Topic: "images", Pool: 1, State: "paused", Reason: "exit 1: boom"},
		{Name: "shrunk", Topic: "orders", Pool: 1, Warm: 1, State: "degraded", Reason: "hole in orders/2: committed offset 9, log offsets 0 to 4: the log ends below",
			Holes: []holes.Hole{{Position: holes.Position{Topic: "orders", Partition: 2, Committed: 9, LogEnd: 4}, Reason: "the log ends below"}}, HolesFound: 1},
	}
	server := fakeDaemon(t, sts)
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := Main(append(args, "--server", server), strings.NewReader(""), &out, &errb)
		return out.String(), errb.String(), code
	}

	out, _, code := run("ls")
	wantLs := `NAME     TOPIC   POOL  WARM  INFLIGHT  PROCESSED  FAILED  DLQ  RESTARTS  LAG  STATUS
greeter  names   2     2     1         10         3       1    0         4    running
resize   images  1     0     0         0          0       0    0         0    paused
shrunk   orders  1     1     0         0          0       0    0         0    degraded
  resize: paused: exit 1: boom
  shrunk: degraded: hole in orders/2: committed offset 9, log offsets 0 to 4: the log ends below
`
	if code != 0 || out != wantLs {
		t.Errorf("ls: exit %d\n%s\nwant\n%s", code, out, wantLs)
	}
	out, _, code = run("ls", "-o", "json")
	var back []restarter.Status
	if code != 0 || json.Unmarshal([]byte(out), &back) != nil || len(back) != 3 || back[1].Reason != "exit 1: boom" ||
		len(back[2].Holes) != 1 || back[2].Holes[0].Committed != 9 {
		t.Errorf("ls -o json: exit %d %s", code, out)
	}

	out, _, code = run("status")
	wantStatus := `daemon:       pid 42, version devel, up 1m30s
state:        /state
broker:       embedded 127.0.0.1:9092, reachable
deployments:  3 (1 degraded, 1 paused, 1 running)
  resize: paused: exit 1: boom
  shrunk: degraded: hole in orders/2: committed offset 9, log offsets 0 to 4: the log ends below
`
	if code != 0 || out != wantStatus {
		t.Errorf("status: exit %d\n%s\nwant\n%s", code, out, wantStatus)
	}
	out, _, code = run("status", "-o", "json")
	var o daemon.Overview
	if code != 0 || json.Unmarshal([]byte(out), &o) != nil || o.Daemon.PID != 42 || !strings.Contains(out, `"uptime": "1m30s"`) {
		t.Errorf("status -o json: exit %d %s", code, out)
	}

	if out, _, code = run("logs", "greeter", "-f", "-n", "5"); code != 0 || out != "greeter tail=5 follow=1\n" {
		t.Errorf("logs: exit %d %q", code, out)
	}
	if _, errOut, code := run("scale", "greeter", "--pool", "4"); code != 0 || errOut != "scaled greeter: topic names, group g, pool 4, running\n" {
		t.Errorf("scale: exit %d %q", code, errOut)
	}
	if _, errOut, code := run("scale", "greeter", "--min-pool", "0", "--max-pool", "8"); code != 0 || errOut != "scaled greeter: topic names, group g, pool 0 (0-8), running\n" {
		t.Errorf("scale to bounds: exit %d %q", code, errOut)
	}
	if _, errOut, code := run("rm", "nope"); code != ExitNotFound || errOut != "fnctl: no such deployment: \"nope\"\n" {
		t.Errorf("rm: exit %d %q", code, errOut)
	}
	empty := fakeDaemon(t, nil)
	var outb, errb bytes.Buffer
	if code := Main([]string{"ls", "--server", empty}, strings.NewReader(""), &outb, &errb); code != 0 || outb.Len() != 0 || !strings.HasPrefix(errb.String(), "no deployments") {
		t.Errorf("ls of nothing: exit %d %q %q", code, outb.String(), errb.String())
	}
}

// The environment names the daemon when the flags do not.
func TestServerFromTheEnvironment(t *testing.T) {
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		w.Write([]byte("[]"))
	}))
	defer srv.Close()
	t.Setenv("FN_SERVER", srv.URL)
	t.Setenv("FN_TOKEN", "from-env")
	c, err := ServerOptions{}.client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(t.Context()); err != nil || auth != "Bearer from-env" {
		t.Errorf("err %v, auth %q", err, auth)
	}
	c, err = ServerOptions{Server: srv.URL, Token: "flag"}.client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(t.Context()); err != nil || auth != "Bearer flag" {
		t.Errorf("err %v, auth %q", err, auth)
	}
}
