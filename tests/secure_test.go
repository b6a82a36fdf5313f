package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/microfn/microfn/broker"
	"github.com/microfn/microfn/fn"
	"github.com/microfn/microfn/internal/fnproto"
	"github.com/microfn/microfn/internal/kconn"
	"github.com/microfn/microfn/internal/testenv"
)

// secureEnv is the FN_* environment that connects to k's SASL_SSL
// listener as u, the password in a file.
func secureEnv(k *testenv.Secured, u testenv.User) []string {
	return []string{
		kconn.EnvTLSCA + "=" + k.CAFile, kconn.EnvSASLMechanism + "=" + u.Mechanism,
		kconn.EnvSASLUser + "=" + u.Name, kconn.EnvSASLPasswordFile + "=" + u.PasswordFile,
	}
}

// oneLine checks that a failure is one line on stderr naming want, and
// does not show the password.
func oneLine(t *testing.T, r runResult, code int, want, password string) {
	t.Helper()
	msg := strings.TrimSpace(r.stderr)
	if r.code != code || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, want) {
		t.Fatalf("exit %d, stderr %q; want exit %d and one line containing %q", r.code, msg, code, want)
	}
	if password != "" && strings.Contains(r.stdout+r.stderr, password) {
		t.Fatalf("the output shows the password: %q", msg)
	}
	t.Logf("exit %d: %s", r.code, msg)
}

// TestSecuredFnctl publishes and tails over SASL_SSL with each mechanism
// (settings as flags, then as FN_* variables), and checks the one line of
// each way to get the connection wrong.
func TestSecuredFnctl(t *testing.T) {
	k := testenv.SecureKafka(t)
	fnctl := build(t, "cmd/fnctl")
	for _, mech := range kconn.Mechanisms {
		u := k.Users[mech]
		t.Run(mech, func(t *testing.T) {
			topic := testenv.Topic(t)
			value := "hello over " + mech
			r := run(t, runTimeout, fnctl, nil, "publish", topic, value, "--brokers", k.Addr, "--tls-ca", k.CAFile,
				"--sasl-mechanism", strings.ToLower(mech), "--sasl-user", u.Name, "--sasl-password-file", u.PasswordFile)
			if r.code != 0 {
				t.Fatalf("publish: exit %d: %s", r.code, r.stderr)
			}
			r = run(t, runTimeout, fnctl, append(secureEnv(k, u), "FN_BROKERS="+k.Addr), "tail", topic, "--from-beginning", "-n", "1")
			if r.code != 0 || !strings.Contains(r.stdout, value) {
				t.Fatalf("tail: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}

	u := k.Users["SCRAM-SHA-512"]
	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong, []byte("Not-"+u.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"publish", "secured-failures", "v", "--brokers", k.Addr}
	cases := []struct {
		name string
		args []string
		env  []string
		code int
		want string
	}{
		{"wrong password", []string{"--tls-ca", k.CAFile, "--sasl-mechanism", u.Mechanism, "--sasl-user", u.Name, "--sasl-password-file", wrong}, nil,
			1, "wrong user name or password"},
		{"untrusted certificate", []string{"--tls-ca", k.OtherCAFile, "--sasl-mechanism", u.Mechanism, "--sasl-user", u.Name, "--sasl-password-file", u.PasswordFile}, nil,
			1, "not signed by a trusted CA"},
		{"plaintext client, TLS listener", nil, nil, 1, "the listener may expect TLS"},
		{"TLS client, plaintext listener", []string{"--brokers", k.Plaintext, "--tls-ca", k.CAFile}, nil, 1, "the listener does not speak TLS"},
		{"no password", []string{"--tls-ca", k.CAFile, "--sasl-mechanism", u.Mechanism, "--sasl-user", u.Name}, nil, 2, "needs a password"},
		{"unknown mechanism", []string{"--tls-ca", k.CAFile, "--sasl-mechanism", "GSSAPI", "--sasl-user", u.Name}, nil, 2, "unknown SASL mechanism"},
		{"wrong password from the environment", []string{"--tls-ca", k.CAFile},
			[]string{"FN_SASL_MECHANISM=" + u.Mechanism, "FN_SASL_USER=" + u.Name, "FN_SASL_PASSWORD=Not-" + u.Password}, 1, "wrong user name or password"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r := run(t, runTimeout, fnctl, c.env, append(base, c.args...)...)
			oneLine(t, r, c.code, c.want, u.Password)
			t.Logf("failed after %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestSecuredStandalone runs a function standalone over SASL_SSL: with
// fn/secure it handles its message; without, it says which import to add.
func TestSecuredStandalone(t *testing.T) {
	k := testenv.SecureKafka(t)
	u := k.Users["SCRAM-SHA-256"]
	topic := testenv.Topic(t)
	produce(t, k.Plaintext, topic, record{key: []byte("k"), value: []byte("ok id-1")})
	logPath := filepath.Join(t.TempDir(), "log")

	plain := build(t, "tests/testfn")
	r := run(t, runTimeout, plain, testfnEnv(k.Addr, topic, logPath, secureEnv(k, u)...))
	oneLine(t, r, fnproto.ExitUsage, `add import _ "github.com/microfn/microfn/fn/secure"`, u.Password)

	secure := build(t, "tests/testfn", "secure")
	r = run(t, runTimeout, secure, testfnEnv(k.Addr, topic, logPath, secureEnv(k, u)...))
	if r.code != fnproto.ExitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if recs := readLog(t, logPath); len(recs) != 1 || string(recs[0].Value) != "ok id-1" {
		t.Fatalf("handled %v, want the one message", recs)
	}

	wrong := append(secureEnv(k, u), kconn.EnvSASLPasswordFile+"=", kconn.EnvSASLPassword+"=Not-"+u.Password)
	r = run(t, runTimeout, secure, testfnEnv(k.Addr, topic, logPath, wrong...))
	oneLine(t, r, fnproto.ExitBroker, "SASL_AUTHENTICATION_FAILED", u.Password)
	untrusted := append(secureEnv(k, u), kconn.EnvTLSCA+"="+k.OtherCAFile)
	r = run(t, runTimeout, secure, testfnEnv(k.Addr, topic, logPath, untrusted...))
	oneLine(t, r, fnproto.ExitBroker, "not signed by a trusted CA", u.Password)
	r = run(t, runTimeout, secure, testfnEnv(k.Plaintext, topic, logPath, secureEnv(k, u)...))
	oneLine(t, r, fnproto.ExitBroker, "does not speak TLS", u.Password)
}

// TestSecuredDaemon runs `fnctl up` on the SASL_SSL listener end to end,
// its password in FN_SASL_PASSWORD, then looks for the password everywhere
// it must not be: the daemon's log, every process's command line, the
// function processes' environment (unless their deployment asked for the
// connection with --kafka-env), the state directory and the API's answers.
func TestSecuredDaemon(t *testing.T) {
	k := testenv.SecureKafka(t)
	u := k.Users["SCRAM-SHA-512"]
	fnctl := build(t, "cmd/fnctl")
	bin := build(t, "tests/testfn")
	topic := testenv.Topic(t)
	createTopic(t, k.Plaintext, topic, 2)
	state := t.TempDir()
	server := freePort(t)
	logPath := filepath.Join(t.TempDir(), "log")

	var daemonLog bytes.Buffer
	var logMu sync.Mutex
	cmd := exec.Command(fnctl, "up", "--state", state, "--listen", server, "--brokers", k.Addr,
		"--tls-ca", k.CAFile, "--sasl-mechanism", u.Mechanism, "--sasl-user", u.Name)
	cmd.Env = append(os.Environ(), kconn.EnvSASLPassword+"="+u.Password)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	ready := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			logMu.Lock()
			daemonLog.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if !once && strings.Contains(sc.Text(), "API on") {
				once = true
				close(ready)
			}
		}
	}()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	select {
	case <-ready:
	case <-exited:
		<-scanned
		t.Fatalf("fnctl up exited at start:\n%s", daemonLog.String())
	case <-time.After(settle):
		t.Fatalf("fnctl up not serving within %v", settle)
	}
	ctl := func(args ...string) string {
		t.Helper()
		r := run(t, settle, fnctl, append(secureEnv(k, u), "FN_SERVER="+server, "FN_BROKERS="+k.Addr), args...)
		if r.code != 0 {
			t.Fatalf("fnctl %v: exit %d\n%s", args, r.code, r.stderr)
		}
		return r.stdout + r.stderr
	}
	ctl("deploy", bin, "--name", "secured", "--topic", topic, "--pool", "2", "--env", "TESTFN_LOG="+logPath)
	asked := filepath.Join(t.TempDir(), "asked")
	ctl("deploy", bin, "--name", "asked", "--topic", topic+"-asked", "--group", topic+"-asked", "--pool", "1", "--kafka-env", "--env", "TESTFN_LOG="+asked)
	n := 10
	for i := range n {
		ctl("publish", topic, fmt.Sprintf("ok id-%d", i), "--key", strconv.Itoa(i))
	}
	deadline := time.Now().Add(settle)
	for len(readLogAll(t, logPath)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages handled within %v\n%s", len(readLogAll(t, logPath)), n, settle, daemonLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var api strings.Builder
	for _, args := range [][]string{{"status"}, {"status", "-o", "json"}, {"ls", "-o", "json"}, {"logs", "secured"}} {
		api.WriteString(ctl(args...))
	}
	if status := ctl("status"); !strings.Contains(status, "TLS SASL SCRAM-SHA-512 as "+u.Name) {
		t.Errorf("status does not say how the daemon connects:\n%s", status)
	}
	logMu.Lock()
	if !strings.Contains(daemonLog.String(), "over TLS SASL SCRAM-SHA-512 as "+u.Name) {
		t.Errorf("the daemon's ready line does not say how it connects:\n%s", daemonLog.String())
	}
	logMu.Unlock()

	pw2 := []byte(u.Password)
	if strings.Contains(api.String(), u.Password) {
		t.Errorf("the API's answers show the password")
	}
	logMu.Lock()
	if strings.Contains(daemonLog.String(), u.Password) {
		t.Errorf("the daemon's log shows the password")
	}
	logMu.Unlock()
	err = filepath.Walk(state, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, pw2) {
			t.Errorf("the state directory's %s holds the password", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	plain, withEnv := 0, 0
	for _, p := range procs {
		if b, err := os.ReadFile(p + "/cmdline"); err == nil && bytes.Contains(b, pw2) {
			t.Errorf("process %s has the password on its command line: %q", filepath.Base(p), b)
		}
		stat, err := os.ReadFile(p + "/stat")
		if err != nil || parentOf(stat) != cmd.Process.Pid {
			continue
		}
		env, err := os.ReadFile(p + "/environ")
		if err != nil {
			continue // exited meanwhile
		}
		if bytes.Contains(env, []byte("TESTFN_LOG="+asked+"\x00")) {
			withEnv++
			if !bytes.Contains(env, []byte(kconn.EnvSASLPassword+"="+u.Password+"\x00")) || !bytes.Contains(env, []byte("FN_BROKERS="+k.Addr+"\x00")) {
				t.Errorf("function process %s of the deployment with --kafka-env lacks the daemon's connection", filepath.Base(p))
			}
			continue
		}
		plain++
		if bytes.Contains(env, pw2) || bytes.Contains(env, []byte("FN_SASL_")) || bytes.Contains(env, []byte("FN_TLS_")) {
			t.Errorf("function process %s has the Kafka connection settings in its environment", filepath.Base(p))
		}
	}
	if plain == 0 || withEnv == 0 {
		t.Errorf("found %d function processes without --kafka-env and %d with it of the daemon (pid %d); want some of each to check", plain, withEnv, cmd.Process.Pid)
	}
}

// parentOf reads the parent pid from a /proc/PID/stat line.
func parentOf(stat []byte) int {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// TestSecuredServe hosts a function with fn.Serve on a broker.Open'd
// kafka+tls:// URL.
func TestSecuredServe(t *testing.T) {
	k := testenv.SecureKafka(t)
	u := k.Users["PLAIN"]
	topic := testenv.Topic(t)
	url := fmt.Sprintf("kafka+tls://%s?ca=%s&sasl=plain&user=%s&password-file=%s", k.Addr, k.CAFile, u.Name, u.PasswordFile)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := broker.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f := fn.New("secured-serve", topic, func(ctx context.Context, v []byte) error {
		return fn.Emit(ctx, topic+"-out", v)
	}, fn.Group(topic))
	served := make(chan error, 1)
	go func() { served <- fn.Serve(ctx, b, fn.ServeFuncs(f)) }()
	if err := b.Publish(topic, message.NewMessage("1", []byte("over SASL_SSL"))); err != nil {
		t.Fatal(err)
	}
	out := consumeAll(t, k.Plaintext, topic+"-out", 1, 60*time.Second)
	if string(out[0].Value) != "over SASL_SSL" {
		t.Fatalf("emitted %q", out[0].Value)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return within 30s of cancel")
	}

	_, err = broker.Open(context.Background(), "kafka+tls://"+k.Addr+"?sasl=plain&user=x&password=secret")
	if err == nil || !strings.Contains(err.Error(), "never goes in a URL") {
		t.Fatalf("a password in the URL: %v", err)
	}
	bad := fmt.Sprintf("kafka+tls://%s?ca=%s&sasl=plain&user=%s", k.Addr, k.CAFile, u.Name)
	t.Setenv(kconn.EnvSASLPassword, "Not-"+u.Password)
	_, err = broker.Open(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), "wrong user name or password") || strings.Contains(err.Error(), u.Password) {
		t.Fatalf("wrong password: %v", err)
	}
}
