package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/testenv"
)

// The README's quick start works as it says.
func TestQuickstartExample(t *testing.T) {
	testenv.EmbeddedPassOnly(t)
	bin := build(t, "examples/quickstart")
	r := run(t, 2*time.Minute, bin, nil)
	if r.code != 0 {
		t.Fatalf("quickstart: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The output the README shows is what it prints, but for the port,
	// the pids and the order of the greetings.
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	shown := regexp.MustCompile("(?s)```\n(embedded broker on .*?)```").FindStringSubmatch(string(b))
	if shown == nil {
		t.Fatal("the README shows no output of the quick start")
	}
	if got, want := normalize(r.stdout), normalize(shown[1]); !slices.Equal(got, want) {
		t.Errorf("quickstart printed\n%s\nthe README shows\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// normalize makes quick start output comparable: no port or pid, lines
// sorted.
func normalize(out string) []string {
	out = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(out, "127.0.0.1:PORT")
	out = regexp.MustCompile(`"pid":\d+`).ReplaceAllString(out, `"pid":PID`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(lines)
	return lines
}

// fnctl invoke runs a function once, locally, as the restarter would.
func TestFnctlInvoke(t *testing.T) {
	testenv.EmbeddedPassOnly(t)
	fnctl := build(t, "cmd/fnctl")
	r := run(t, 2*time.Minute, fnctl, nil, "invoke", "../examples/greeter", `{"name":"ada"}`, "--key", "ada")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ack\nemit greetings key=ada {\"text\":\"hello, ada\"") {
		t.Fatalf("invoke: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, 2*time.Minute, fnctl, nil, "invoke", "../examples/greeter", `{"nom":1}`, "-o", "json")
	if r.code != 1 || !strings.Contains(r.stdout, `"outcome": "dead-letter"`) || !strings.Contains(r.stdout, `"failure": "permanent"`) {
		t.Fatalf("invoke of a bad message: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, 2*time.Minute, fnctl, nil, "invoke", "/bin/true", "x")
	if r.code != 2 || !strings.Contains(r.stderr, "not a function built with microfn") {
		t.Fatalf("invoke of a non-function: exit %d, stderr %q", r.code, r.stderr)
	}
	r = run(t, 2*time.Minute, fnctl, nil, "invoke", "--plain", "/bin/false", "x")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "retry (exit: ") {
		t.Fatalf("invoke --plain of a failing executable: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
}

// fnctl invoke holds a function to its declared timeout and attempts, as
// the restarter does: it kills the handler at the deadline, and a failed
// last attempt is dead-lettered, not retried.
func TestFnctlInvokeHonoursTimeoutAndAttempts(t *testing.T) {
	fnctl, bin := build(t, "cmd/fnctl"), build(t, "tests/testfn")
	logPath := filepath.Join(t.TempDir(), "log")
	env := []string{"TESTFN_LOG=" + logPath, "TESTFN_TIMEOUT=1s"}
	r := run(t, 2*time.Minute, fnctl, env, "invoke", bin, "sleep=20s")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "retry (timeout: timed out after ") {
		t.Fatalf("a handler over its declared 1s timeout: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	if recs := readLogAll(t, logPath); len(recs) != 1 || recs[0].Phase != "start" {
		t.Fatalf("the handler was not stopped at its deadline: log %+v", recs)
	}
	r = run(t, 2*time.Minute, fnctl, env, "invoke", bin, "fail", "--attempt", "3")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "dead-letter (error: told to fail)") {
		t.Fatalf("the last of 3 declared attempts failing: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, 2*time.Minute, fnctl, env, "invoke", bin, "fail", "--attempt", "2")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "retry (error: told to fail)") {
		t.Fatalf("attempt 2 of 3 failing: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
}

// consoleStep is one command of a README's console block and what it
// prints.
type consoleStep struct {
	line string
	args []string
	out  []string
}

// readmeConsole reads a README and the steps of its first console block.
func readmeConsole(t *testing.T, path string) (string, []consoleStep) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := fencedBlocks(string(b))
	i := slices.IndexFunc(blocks, func(b fenced) bool { return b.lang == "console" })
	if i < 0 {
		t.Fatalf("%s has no console block", path)
	}
	var steps []consoleStep
	for _, line := range blocks[i].lines {
		cmd, ok := strings.CutPrefix(line, "$ ")
		if !ok {
			if len(steps) == 0 {
				t.Fatalf("%s: output before the first command: %q", path, line)
			}
			steps[len(steps)-1].out = append(steps[len(steps)-1].out, line)
			continue
		}
		args, err := shellWords(cmd)
		if err != nil {
			t.Fatalf("%s: %q: %v", path, cmd, err)
		}
		steps = append(steps, consoleStep{line: cmd, args: args})
	}
	return string(b), steps
}

// fenced is a fenced block of a Markdown file.
type fenced struct {
	lang  string
	lines []string
}

func fencedBlocks(md string) []fenced {
	var (
		out []fenced
		cur *fenced
	)
	for _, line := range strings.Split(md, "\n") {
		fence, ok := strings.CutPrefix(line, "```")
		switch {
		case ok && cur == nil:
			cur = &fenced{lang: fence}
		case ok:
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, line)
		}
	}
	return out
}

// shellWords splits a command line as sh does for the plain words and
// quotes that READMEs use: no escapes, no variables, no operators.
func shellWords(s string) ([]string, error) {
	var (
		words []string
		w     strings.Builder
		in    bool
		quote rune
	)
	for _, c := range s {
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(c)
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		case strings.ContainsRune(`\$|&;<>*`+"`", c):
			return nil, fmt.Errorf("%q is beyond what the tests run", c)
		default:
			w.WriteRune(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if in {
		words = append(words, w.String())
	}
	return words, nil
}

// consoleOutput makes command output comparable: no timestamps, no
// deployment state that depends on timing, lines sorted (tail prints the
// partitions in any order).
func consoleOutput(lines []string) []string {
	out := strings.Join(lines, "\n")
	out = regexp.MustCompile(`"(timestamp|fn_dead_lettered_at)":"[^"]*"`).ReplaceAllString(out, `"$1":"TIME"`)
	out = regexp.MustCompile(`(?m)^((deployed|replaced) .*, pool \d+), (starting|running)`).ReplaceAllString(out, "$1, STATE")
	out = regexp.MustCompile(`\d{4}/\d\d/\d\d \d\d:\d\d:\d\d `).ReplaceAllString(out, "DATE ")
	out = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(out, "127.0.0.1:PORT")
	got := strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(got)
	return got
}

// runFnctl runs fnctl as a README's step does, in the repository's root.
func runFnctl(t *testing.T, fnctl string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	cmd := exec.CommandContext(ctx, fnctl, args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("fnctl %v did not exit within %v\n%s", args, settle, out)
	}
	if err != nil {
		t.Fatalf("fnctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// topicSize is the number of records in topic (no partition of the
// embedded broker's topics is ever trimmed, nor holds control records).
func topicSize(t *testing.T, brokers, topic string) int64 {
	t.Helper()
	var n int64
	withAdmin(t, brokers, func(client sarama.Client, _ sarama.ClusterAdmin) {
		parts, err := client.Partitions(topic)
		if err != nil {
			t.Fatalf("partitions of %s: %v", topic, err)
		}
		for _, p := range parts {
			end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				t.Fatal(err)
			}
			start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			n += end - start
		}
	})
	return n
}

// examples/orders runs as its README says, on `fnctl up` with its
// embedded broker: an order goes down the chain, one over the limit is
// dead-lettered with the documented headers, and once the limit is raised
// `fnctl replay` sends it down the chain exactly once.
func TestOrdersExample(t *testing.T) {
	testenv.EmbeddedPassOnly(t)
	readme, steps := readmeConsole(t, "../examples/orders/README.md")
	for _, s := range []string{"go build -o fnctl ./cmd/fnctl\n", "./fnctl up\n"} {
		if !strings.Contains(readme, s) {
			t.Fatalf("examples/orders/README.md does not say %q", s)
		}
	}
	u := &upEmbedded{t: t, fnctl: build(t, "cmd/fnctl"), state: t.TempDir(), brokerAddr: freePort(t), apiAddr: freePort(t)}
	u.start()
	env := []string{"FN_SERVER=" + u.apiAddr, "FN_BROKERS=" + u.brokerAddr}
	var dead string
	for _, s := range steps {
		if s.args[0] != "./fnctl" {
			t.Fatalf("examples/orders/README.md: %q is not an fnctl command", s.line)
		}
		out := runFnctl(t, u.fnctl, env, s.args[1:]...)
		if got, want := consoleOutput(strings.Split(out, "\n")), consoleOutput(s.out); !slices.Equal(got, want) {
			t.Fatalf("$ %s\nprinted\n%s\nthe README shows\n%s\ndaemon:\n%s", s.line, strings.Join(got, "\n"), strings.Join(want, "\n"), u.proc.stderr)
		}
		if slices.Contains(s.args, "orders.dlq") {
			dead = out
		}
	}

	var dl struct {
		Key     string            `json:"key"`
		Headers map[string]string `json:"headers"`
		Value   string            `json:"value"`
	}
	if err := json.Unmarshal([]byte(dead), &dl); err != nil {
		t.Fatalf("the README shows no dead letter as JSON: %v\n%s", err, dead)
	}
	want := map[string]string{"fn_reason": "permanent", "fn_failure": "permanent", "fn_function": "bill", "fn_attempts": "1", "fn_original_topic": "orders"}
	for k, v := range want {
		if dl.Headers[k] != v {
			t.Errorf("dead letter header %s = %q, want %q", k, dl.Headers[k], v)
		}
	}
	if !strings.Contains(dl.Headers["fn_error"], "over the billing limit 1000") {
		t.Errorf("fn_error %q does not say why", dl.Headers["fn_error"])
	}
	if _, err := time.Parse(time.RFC3339Nano, dl.Headers["fn_dead_lettered_at"]); err != nil {
		t.Errorf("fn_dead_lettered_at: %v", err)
	}

	// Once both functions have committed everything, the chain holds each
	// order once: the replayed one was billed and notified exactly once.
	waitCommitted(t, u.brokerAddr, "bill", "orders")
	waitCommitted(t, u.brokerAddr, "notify", "invoices")
	for topic, n := range map[string]int64{"orders": 3, "orders.dlq": 1, "invoices": 2, "notifications": 2} {
		if got := topicSize(t, u.brokerAddr, topic); got != n {
			t.Errorf("%s holds %d records, want %d", topic, got, n)
		}
	}
	texts := map[string]int{}
	for _, m := range consumeAll(t, u.brokerAddr, "notifications", 2, settle) {
		texts[string(m.Value)]++
	}
	if texts[`{"customer":"grace","text":"invoice for order o-2: 4000"}`] != 1 {
		t.Errorf("notifications: %v, want o-2's once", texts)
	}
}

// service is a running examples/service, its stdout and stderr in one
// stream as a terminal shows them.
type service struct {
	t            *testing.T
	cmd          *exec.Cmd
	exited       chan struct{}
	out          *syncBuffer
	http, broker string
}

func startService(t *testing.T, bin string, args ...string) *service {
	t.Helper()
	cmd := exec.Command(bin, args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	s := &service{t: t, cmd: cmd, exited: make(chan struct{}), out: &syncBuffer{mu: make(chan struct{}, 1)}}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.out.write(sc.Text())
			if a, ok := strings.CutPrefix(sc.Text(), "embedded broker on "); ok {
				s.broker = a
			}
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				s.http = a
				close(ready)
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.exited
	})
	select {
	case <-ready:
	case <-s.exited:
		t.Fatalf("service exited at start: %v\n%s", cmd.ProcessState, s.out)
	case <-time.After(settle):
		t.Fatalf("service not listening within %v\n%s", settle, s.out)
	}
	return s
}

// request sends an HTTP request to the service; with poll, it repeats a
// GET until the body is want (the function handles an event after the
// request that published it returned).
func (s *service) request(method, path, body, want string, poll bool) {
	s.t.Helper()
	deadline := time.Now().Add(settle)
	for {
		req, err := http.NewRequest(method, "http://"+s.http+path, strings.NewReader(body))
		if err != nil {
			s.t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			s.t.Fatalf("%s %s: %v\n%s", method, path, err, s.out)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			s.t.Fatal(err)
		}
		if string(got) == want {
			return
		}
		if !poll || time.Now().After(deadline) {
			s.t.Fatalf("%s %s: %s %q, want %q\n%s", method, path, resp.Status, got, want, s.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends sig and waits for the service to exit; it returns the exit
// code.
func (s *service) stop(sig syscall.Signal) int {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(settle):
		s.t.Fatalf("service did not exit within %v of %v\n%s", settle, sig, s.out)
	}
	return s.cmd.ProcessState.ExitCode()
}

// curl reads the method, body and path of a README's curl line.
func curl(t *testing.T, args []string) (method, path, body string) {
	t.Helper()
	method = "GET"
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-s":
		case a == "-X" && i+1 < len(args):
			i++
			method = args[i]
		case a == "-d" && i+1 < len(args):
			i++
			body = args[i]
		case strings.HasPrefix(a, "localhost:8080/"):
			path = strings.TrimPrefix(a, "localhost:8080")
		default:
			t.Fatalf("curl %v: %q is beyond what the test runs", args, a)
		}
	}
	return method, path, body
}

// examples/service runs as its README says: each request publishes an
// event that the function it hosts handles, its confirmation can be read
// with fnctl, a negative total is dead-lettered, and an interrupt stops
// it cleanly, printing what the README shows.
func TestServiceExample(t *testing.T) {
	testenv.EmbeddedPassOnly(t)
	readme, steps := readmeConsole(t, "../examples/service/README.md")
	for _, s := range []string{"go run ./examples/service\n", "`--listen`", "--broker HOST:PORT", "./fnctl broker"} {
		if !strings.Contains(readme, s) {
			t.Fatalf("examples/service/README.md does not say %q", s)
		}
	}
	// What the service prints: the README's blocks of plain output, and
	// "stopped", which its text names.
	var shown []string
	for _, b := range fencedBlocks(readme) {
		if b.lang == "" {
			shown = append(shown, b.lines...)
		}
	}
	shown = append(shown, "stopped")
	fnctl, bin := build(t, "cmd/fnctl"), build(t, "examples/service")

	svc := startService(t, bin, "--listen", "127.0.0.1:0")
	if svc.broker == "" {
		t.Fatalf("the service did not say where its embedded broker is\n%s", svc.out)
	}
	for _, s := range steps {
		want := strings.Join(s.out, "\n") + "\n"
		switch s.args[0] {
		case "curl":
			method, path, body := curl(t, s.args)
			svc.request(method, path, body, want, method == "GET")
		case "./fnctl":
			args := slices.Clone(s.args[1:])
			if i := slices.Index(args, "--brokers"); i >= 0 && i+1 < len(args) {
				args[i+1] = svc.broker
			}
			out := runFnctl(t, fnctl, nil, args...)
			if got, want := consoleOutput(strings.Split(out, "\n")), consoleOutput(s.out); !slices.Equal(got, want) {
				t.Fatalf("$ %s\nprinted\n%s\nthe README shows\n%s", s.line, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		default:
			t.Fatalf("examples/service/README.md: %q is neither curl nor fnctl", s.line)
		}
	}
	if code := svc.stop(syscall.SIGINT); code != 0 {
		t.Fatalf("exit code %d after an interrupt\n%s", code, svc.out)
	}
	if got, want := consoleOutput(strings.Split(svc.out.String(), "\n")), consoleOutput(shown); !slices.Equal(got, want) {
		t.Fatalf("the service printed\n%s\nthe README shows\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// examples/service on a broker of its own (`fnctl broker`), as its README
// suggests for keeping the events: stopped with SIGTERM, it has committed
// what it handled, and a restart handles no event twice.
func TestServiceExampleRestart(t *testing.T) {
	testenv.EmbeddedPassOnly(t)
	fnctl, bin := build(t, "cmd/fnctl"), build(t, "examples/service")
	addr := freePort(t)
	startProc(t, "listening on "+addr, fnctl, "broker", "--listen", addr, "--data", t.TempDir())
	for _, id := range []string{"o-1", "o-2"} {
		svc := startService(t, bin, "--listen", "127.0.0.1:0", "--broker", addr)
		svc.request("POST", "/orders", `{"id":"`+id+`","total":12}`, `{"id":"`+id+`","status":"received"}`+"\n", false)
		svc.request("GET", "/orders/"+id, "", `{"id":"`+id+`","status":"confirmed"}`+"\n", true)
		if code := svc.stop(syscall.SIGTERM); code != 0 {
			t.Fatalf("exit code %d after SIGTERM\n%s", code, svc.out)
		}
		if out := svc.out.String(); !strings.HasSuffix(out, "stopped\n") {
			t.Fatalf("the service did not say it stopped:\n%s", out)
		}
	}
	withAdmin(t, addr, func(client sarama.Client, _ sarama.ClusterAdmin) {
		parts, err := client.Partitions("orders")
		if err != nil {
			t.Fatal(err)
		}
		pos, err := kafka.Positions(client, "confirm", "orders", parts)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pos {
			if p.LogEnd > 0 && p.Committed != p.LogEnd {
				t.Errorf("after the service stopped, group confirm has committed %+v", p)
			}
		}
	})
	if n := topicSize(t, addr, "confirmations"); n != 2 {
		var got []string
		for _, m := range consumeAll(t, addr, "confirmations", int(n), settle) {
			got = append(got, fmt.Sprintf("%d@%d %s", m.Partition, m.Offset, m.Value))
		}
		t.Errorf("confirmations holds %d records, want 2, one per order: %v", n, got)
	}
}
