package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/microfn/microfn/internal/daemon"
	"github.com/microfn/microfn/internal/fnproto"
	"github.com/microfn/microfn/restarter"
)

func TestDeployFlags(t *testing.T) {
	cases := []struct {
		args    []string
		wantErr string
		check   func(DeployOptions) bool
	}{
		{[]string{"./fn"}, "", func(o DeployOptions) bool {
			return o.Path == "./fn" && o.Pool == 1 && o.Order == "key" && o.Args == nil && o.Timeout == 0 && o.Attempts == 0 && !o.Plain &&
				!o.ShareGroup && !o.DryRun
		}},
		{[]string{"./fn", "--group", "g", "--dry-run"}, "", func(o DeployOptions) bool { return o.Group == "g" && o.ShareGroup && o.DryRun }},
		{[]string{"./fn", "--name", "n", "--subscriber", "s", "--topic", "t", "--group", "g", "--pool", "4",
			"--timeout", "5s", "--attempts", "2", "--order", "none", "--dlq", "d", "--env", "A=1", "--env", "B=",
			"--memory", "256MiB", "--server", "h:1", "--token", "x", "--", "-v", "x"}, "", func(o DeployOptions) bool {
			return o.Path == "./fn" && o.Name == "n" && o.Subscriber == "s" && o.Topic == "t" && o.Group == "g" &&
				o.Pool == 4 && o.Timeout == 5*time.Second && o.Attempts == 2 && o.Order == "none" && o.DeadLetter == "d" &&
				slices.Equal(o.Env, []string{"A=1", "B="}) && o.Memory == 256<<20 && o.Server == "h:1" && o.Token == "x" &&
				slices.Equal(o.Args, []string{"-v", "x"}) && o.ShareGroup
		}},
		{[]string{"--plain", "./x.sh", "--topic", "t", "--memory", "1GB"}, "", func(o DeployOptions) bool {
			return o.Plain && o.Path == "./x.sh" && o.Topic == "t" && o.Memory == 1e9
		}},
		{[]string{}, "want PATH", nil},
		{[]string{"a", "b"}, "want PATH", nil},
		{[]string{"--", "./fn"}, "want PATH", nil},
		{[]string{"./fn", "--pool", "0"}, "--pool must be at least 1, got 0", nil},
		{[]string{"./fn", "--pool", "-2"}, "--pool must be at least 1, got -2", nil},
		{[]string{"./fn", "--min-pool", "0", "--max-pool", "8", "--scale-down-after", "2s"}, "", func(o DeployOptions) bool {
			return o.Pool == 0 && o.MinPool == 0 && o.MaxPool == 8 && o.ScaleDownAfter == 2*time.Second
		}},
		{[]string{"./fn", "--max-pool", "4"}, "", func(o DeployOptions) bool { return o.Pool == 0 && o.MinPool == 1 && o.MaxPool == 4 }},
		{[]string{"./fn", "--pool", "2", "--max-pool", "4"}, "--pool and --min-pool/--max-pool exclude each other", nil},
		{[]string{"./fn", "--min-pool", "0"}, "--min-pool needs --max-pool", nil},
		{[]string{"./fn", "--min-pool", "0", "--max-pool", "0"}, "--max-pool must be at least 1, got 0", nil},
		{[]string{"./fn", "--min-pool", "5", "--max-pool", "4"}, "--min-pool must be from 0 to --max-pool (4), got 5", nil},
		{[]string{"./fn", "--min-pool", "-1", "--max-pool", "4"}, "--min-pool must be from 0 to --max-pool (4), got -1", nil},
		{[]string{"./fn", "--max-pool", "4", "--scale-down-after", "0s"}, "--scale-down-after must be positive", nil},
		{[]string{"./fn", "--order", "random"}, `--order must be key, partition or none, got "random"`, nil},
		{[]string{"./fn", "--env", "NOEQ"}, `malformed --env "NOEQ": want K=V`, nil},
		{[]string{"./fn", "--env", "=v"}, `malformed --env "=v": want K=V`, nil},
		{[]string{"./fn", "--memory", "lots"}, `--memory "lots": want a size like 256MiB`, nil},
		{[]string{"./fn", "--timeout", "0s"}, "--timeout must be positive", nil},
		{[]string{"./fn", "--attempts", "0"}, "--attempts must be at least 1, got 0", nil},
		{[]string{"./x", "--plain"}, "--plain needs --topic", nil},
		{[]string{"./x", "--plain", "--topic", "t", "--subscriber", "s"}, "--subscriber and --plain exclude each other", nil},
		{[]string{"./fn", "--name", ""}, `--name: name "": want`, nil},
		{[]string{"./fn", "--name", "a/b"}, `--name: name "a/b": want`, nil},
		{[]string{"./fn", "--topic", ""}, "--topic: empty topic name", nil},
		{[]string{"./fn", "--topic", "a:b"}, `--topic: topic "a:b": want`, nil},
		{[]string{"./fn", "--group", ""}, "--group: empty consumer group name", nil},
		{[]string{"./fn", "--group", "a b"}, `--group: consumer group "a b": want`, nil},
		{[]string{"./fn", "--dlq", ""}, "--dlq: empty topic name", nil},
		{[]string{"./fn", "--subscriber", ""}, "--subscriber: empty subscriber name", nil},
	}
	for _, c := range cases {
		var got DeployOptions
		cmd := newCmdDeploy(IO{}, func(_ context.Context, o DeployOptions) error { got = o; return nil })
		cmd.SetArgs(c.args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.Execute()
		if c.wantErr != "" {
			var ue usageError
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.As(err, &ue) {
				t.Errorf("%v: err %v, want a usage error containing %q", c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil || !c.check(got) {
			t.Errorf("%v: err %v, options %+v", c.args, err, got)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "256MiB": 256 << 20, "2GiB": 2 << 30, "10KB": 10e3, "5B": 5} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "1.5GiB", "12 parsecs", "9999999999TiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestChooseSubscriber(t *testing.T) {
	m := fnproto.Manifest{Protocol: fnproto.ProtocolVersion, Subscribers: []fnproto.Subscriber{{Name: "a"}, {Name: "b"}}}
	if s, err := chooseSubscriber("./f", m, "b"); err != nil || s.Name != "b" {
		t.Errorf("choose b: %+v %v", s, err)
	}
	for _, c := range []struct {
		m    fnproto.Manifest
		name string
		want string
	}{
		{m, "", "./f declares 2 subscribers (a, b): choose one with --subscriber"},
		{m, "c", `./f has no subscriber "c" (it declares: a, b)`},
		{fnproto.Manifest{Protocol: fnproto.ProtocolVersion}, "", "./f declares no subscribers"},
	} {
		_, err := chooseSubscriber("./f", c.m, c.name)
		var ue usageError
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || !errors.As(err, &ue) {
			t.Errorf("choose %q: %v, want a usage error starting %q", c.name, err, c.want)
		}
	}
}

// buildGreeter builds examples/greeter as deploy does and returns the
// binary's path.
func buildGreeter(t *testing.T) string {
	t.Helper()
	bin, cleanup, err := functionBinary(t.Context(), "../../examples/greeter")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	return bin
}

// deploy reads the topic and options a function declares from its
// manifest, and flags override them.
func TestDeployReadsTheManifest(t *testing.T) {
	defaults := DeployOptions{poolFlags: poolFlags{Pool: 1}, Order: "key"}
	opts := defaults
	opts.Path = "../../examples/greeter"
	spec, cleanup, err := prepareDeploy(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	bin := spec.Binary
	if fi, err := os.Stat(bin); err != nil || !filepath.IsAbs(bin) || fi.Mode()&0o111 == 0 {
		t.Errorf("binary %q: %v", bin, err)
	}
	want := restarter.Spec{Name: "greeter", Binary: bin, Subscriber: "greeter", Topic: "names", Group: "greeter",
		DeadLetter: "names.dlq", Pool: 1, Timeout: restarter.Duration(5 * time.Second), MaxAttempts: 3, Order: "key"}
	if !specEqual(spec, want) {
		t.Errorf("spec\n %+v\nwant\n %+v", spec, want)
	}
	cleanup()
	if _, err := os.Stat(bin); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the build was not removed: %v", err)
	}

	// An executable is used as is; flags override the manifest, and the
	// derived dead-letter topic follows --topic.
	greeter := buildGreeter(t)
	opts = defaults
	opts.Path, opts.Name, opts.Topic, opts.Attempts, opts.Timeout = greeter, "greeter-eu", "names-eu", 5, time.Minute
	opts.Args, opts.Env = []string{"-v"}, []string{"A=1"}
	spec, cleanup, err = prepareDeploy(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	cleanup()
	want = restarter.Spec{Name: "greeter-eu", Binary: greeter, Args: []string{"-v"}, Env: []string{"A=1"}, Subscriber: "greeter",
		Topic: "names-eu", Group: "greeter", Pool: 1, Timeout: restarter.Duration(time.Minute), MaxAttempts: 5, Order: "key"}
	if !specEqual(spec, want) {
		t.Errorf("spec\n %+v\nwant\n %+v", spec, want)
	}
	if _, err := os.Stat(greeter); err != nil {
		t.Errorf("cleanup removed an executable deployed as is: %v", err)
	}

	opts = defaults
	opts.Path, opts.Subscriber = greeter, "nope"
	if _, _, err := prepareDeploy(t.Context(), opts); err == nil || !strings.Contains(err.Error(), `has no subscriber "nope" (it declares: greeter)`) {
		t.Errorf("unknown subscriber: %v", err)
	}
}

func specEqual(a, b restarter.Spec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// A binary that declares no subscribers explains itself on --describe;
// deploy passes that on as one line and exit code 2.
func TestDeployRefusesABinaryWithoutSubscribers(t *testing.T) {
	_, _, err := prepareDeploy(t.Context(), DeployOptions{Path: "testdata/nosubs", poolFlags: poolFlags{Pool: 1}, Order: "key"})
	want := "testdata/nosubs: this binary declares no subscribers: call fn.Subscribe before fn.Main"
	var ue usageError
	if err == nil || err.Error() != want || !errors.As(err, &ue) {
		t.Fatalf("err %v, want a usage error %q", err, want)
	}
	var out, errb bytes.Buffer
	code := Main([]string{"deploy", "testdata/nosubs", "--server", "127.0.0.1:1"}, strings.NewReader(""), &out, &errb)
	if code != ExitUsage || errb.String() != "fnctl: "+want+"\n" {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

func TestDeployRefusesWhatIsNotAFunction(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		path  string
		usage bool
		want  string
	}{
		{script("quiet.sh", "#!/bin/sh\necho hello\n", 0o755), true, "printed no microfn manifest on --describe: deploy an executable not built with fn with --plain --topic T"},
		{script("fails.sh", "#!/bin/sh\necho 'no such flag' >&2\nexit 1\n", 0o755), true, "--describe: exit status 1: no such flag (deploy an executable not built with fn with --plain"},
		{script("usage.sh", "#!/bin/sh\necho \"usage.sh: unrecognized option '$1'\" >&2\nexit 2\n", 0o755), true,
			"--describe: exit status 2: usage.sh: unrecognized option '--describe' (deploy an executable not built with fn with --plain"},
		{script("data.txt", "hello\n", 0o644), true, "is not executable"},
		{filepath.Join(dir, "missing"), true, "no such file or directory"},
		{"./missing", true, "./missing: no such file or directory"},
	} {
		_, _, err := prepareDeploy(t.Context(), DeployOptions{Path: c.path, poolFlags: poolFlags{Pool: 1}, Order: "key"})
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), c.want) || errors.As(err, &ue) != c.usage || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line containing %q (usage error: %v)", c.path, err, c.want, c.usage)
		}
	}
	// With --plain it deploys as is, named after the file, extension and all.
	spec, cleanup, err := prepareDeploy(t.Context(), DeployOptions{Path: filepath.Join(dir, "quiet.sh"), Plain: true, Topic: "t", poolFlags: poolFlags{Pool: 2}, Order: "none"})
	if err != nil {
		t.Fatal(err)
	}
	cleanup()
	if spec.Name != "quiet.sh" || !spec.Plain || spec.Topic != "t" || spec.Pool != 2 || spec.Order != "none" || spec.Subscriber != "" {
		t.Errorf("plain spec %+v", spec)
	}
}

// runDeploy sends the spec to the daemon, which copies the binary before
// the build is removed, and prints the result; the daemon's refusal of
// bad input is a usage error.
func TestRunDeploy(t *testing.T) {
	script := filepath.Join(t.TempDir(), "f.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var got restarter.Spec
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Path != "/v1/deployments/f.sh" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":"unexpected request"}`, http.StatusTeapot)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil || got.Topic == "bad" {
			http.Error(w, `{"error":"no good"}`, http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(daemon.DeployResult{Status: restarter.Status{Name: got.Name, Topic: got.Topic, Group: "f.sh", Pool: got.Pool, State: "starting"}})
	}))
	defer srv.Close()

	var errb bytes.Buffer
	opts := DeployOptions{IO: IO{Out: &bytes.Buffer{}, Err: &errb}, ServerOptions: ServerOptions{Server: srv.URL, Token: "tok"},
		Path: script, Plain: true, Topic: "t", poolFlags: poolFlags{Pool: 3}, Order: "key"}
	if err := runDeploy(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	if got.Binary != script || !got.Plain || got.Pool != 3 {
		t.Errorf("sent %+v", got)
	}
	if errb.String() != "deployed f.sh: topic t, group f.sh, pool 3, starting\n" {
		t.Errorf("printed %q", errb.String())
	}
	opts.Topic = "bad"
	var ue usageError
	if err := runDeploy(t.Context(), opts); err == nil || err.Error() != "no good" || !errors.As(err, &ue) {
		t.Errorf("refused: %v", err)
	}
}

// ls returns the deployments of the daemon at server by name.
func lsByName(t *testing.T, server string) map[string]restarter.Status {
	t.Helper()
	out, errOut, code := fnctl(t, "ls", "-o", "json", "--server", server)
	var sts []restarter.Status
	if code != ExitOK || json.Unmarshal([]byte(out), &sts) != nil {
		t.Fatalf("ls: exit %d %s %s", code, out, errOut)
	}
	m := map[string]restarter.Status{}
	for _, s := range sts {
		m[s.Name] = s
	}
	return m
}

// An empty --name once replaced the deployment of the default name, and a
// redeploy said "deployed" like a first one. Now an empty name is refused,
// a redeploy says "replaced" and what changed, and --dry-run shows the
// spec and the verdict without applying it.
func TestRedeploySaysWhatItReplaces(t *testing.T) {
	clearEnv(t)
	d := startDaemon(t, "")
	t.Setenv("FN_SERVER", d.API)
	f := script(t, "f.sh", "cat >/dev/null\n")
	deploy := func(args ...string) (string, string, int) {
		return fnctl(t, append([]string{"deploy", f, "--plain", "--topic", "names"}, args...)...)
	}
	expect := func(what, errOut string, code int, re string) {
		t.Helper()
		if code != ExitOK || !regexp.MustCompile(`^`+re+`\n$`).MatchString(errOut) {
			t.Errorf("%s: exit %d, stderr %q, want %s", what, code, errOut, re)
		}
	}

	_, errOut, code := deploy("--pool", "4")
	expect("first deploy", errOut, code, `deployed f\.sh: topic names, group f\.sh, pool 4, \w+`)
	if _, errOut, code := deploy("--name", ""); code != ExitUsage || !strings.HasPrefix(errOut, `fnctl: --name: name "": want`) {
		t.Errorf("--name '': exit %d %q", code, errOut)
	}
	if _, errOut, code := deploy("--topic", ""); code != ExitUsage || errOut != "fnctl: --topic: empty topic name\n" {
		t.Errorf("--topic '': exit %d %q", code, errOut)
	}

	out, errOut, code := deploy("--dry-run")
	expect("dry run", errOut, code, `dry run: would replace f\.sh: topic names, group f\.sh, pool 1 \(pool 4 -> 1\)`)
	var spec restarter.Spec
	if err := json.Unmarshal([]byte(out), &spec); err != nil || spec.Name != "f.sh" || spec.Pool != 1 || spec.Topic != "names" ||
		spec.Group != "f.sh" || spec.DeadLetter != "names.dlq" || spec.MaxAttempts != 3 || !spec.Plain {
		t.Errorf("dry run printed %s (%v)", out, err)
	}
	if got := lsByName(t, d.API); len(got) != 1 || got["f.sh"].Pool != 4 {
		t.Errorf("after the refused and dry deploys: %+v", got)
	}

	_, errOut, code = deploy()
	expect("redeploy", errOut, code, `replaced f\.sh: topic names, group f\.sh, pool 1, \w+ \(pool 4 -> 1\)`)
	_, errOut, code = deploy()
	expect("same again", errOut, code, `replaced f\.sh: topic names, group f\.sh, pool 1, \w+ \(nothing changed: same binary and spec\)`)
	if err := os.WriteFile(f, []byte("#!/bin/sh\ncat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = deploy("--timeout", "5s", "--env", "A=1")
	expect("new binary", errOut, code, `replaced f\.sh: topic names, group f\.sh, pool 1, \w+ \(new binary, timeout 30s -> 5s, env \[\] -> \[A=1\]\)`)

	// With no daemon to ask, a dry run still shows the spec, and says what
	// it could not check.
	nobody := closedAddr(t)
	out, errOut, code = deploy("--dry-run", "--server", nobody)
	if code != ExitOK || json.Unmarshal([]byte(out), &spec) != nil || spec.Binary != f ||
		errOut != "dry run: would deploy f.sh; no fnctl daemon at "+nobody+" (start one with `fnctl up`), so not compared with what is deployed\n" {
		t.Errorf("dry run without a daemon: exit %d %s %q", code, out, errOut)
	}
}

// A second deployment of the greeter under another name joined the
// first one's consumer group and silently got half of the messages. The
// daemon now refuses it, says why, and takes it with an explicit --group.
func TestDeployRefusesASecondConsumerInTheSameGroup(t *testing.T) {
	clearEnv(t)
	d := startDaemon(t, "")
	t.Setenv("FN_SERVER", d.API)
	greeter := buildGreeter(t)
	if _, errOut, code := fnctl(t, "deploy", greeter); code != ExitOK || !strings.HasPrefix(errOut, "deployed greeter: topic names, group greeter, pool 1") {
		t.Fatalf("deploy greeter: exit %d %q", code, errOut)
	}
	_, errOut, code := fnctl(t, "deploy", greeter, "--name", "g1")
	want := `fnctl: consumer group "greeter" is already deployment "greeter"'s: both would consume names and split its messages between them; ` +
		"to share the group on purpose, pass --group greeter; for a consumer of its own, pass another --group\n"
	if code != ExitUsage || errOut != want {
		t.Errorf("second consumer: exit %d\n%q\nwant\n%q", code, errOut, want)
	}
	if _, errOut, code := fnctl(t, "deploy", greeter, "--name", "g1", "--dry-run"); code != ExitUsage || errOut != want {
		t.Errorf("second consumer, dry run: exit %d %q", code, errOut)
	}
	if got := lsByName(t, d.API); len(got) != 1 {
		t.Errorf("deployments %v", got)
	}
	for _, c := range []struct{ group, want string }{
		{"g1", "deployed g1: topic names, group g1, pool 1"},
		{"greeter", "deployed g2: topic names, group greeter, pool 1"},
	} {
		name := map[string]string{"g1": "g1", "greeter": "g2"}[c.group]
		if _, errOut, code := fnctl(t, "deploy", greeter, "--name", name, "--group", c.group); code != ExitOK || !strings.HasPrefix(errOut, c.want) {
			t.Errorf("--group %s: exit %d %q", c.group, code, errOut)
		}
	}
}
