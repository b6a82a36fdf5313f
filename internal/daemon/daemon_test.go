package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microfn/microfn/restarter"
)

// fakeEngine records what the daemon asks of the engine.
type fakeEngine struct {
	mu          sync.Mutex
	deps        map[string]restarter.Spec
	refuse      map[string]error // Deploy of these names fails
	refuseTopic map[string]error // Deploy of specs on these topics fails...
	stopFirst   bool             // ... after stopping the deployment it replaces
	closed      bool
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{deps: map[string]restarter.Spec{}, refuse: map[string]error{}, refuseTopic: map[string]error{}}
}

func (f *fakeEngine) Deploy(_ context.Context, s restarter.Spec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refuse[s.Name]; err != nil {
		return err
	}
	if err := f.refuseTopic[s.Topic]; err != nil {
		if f.stopFirst {
			delete(f.deps, s.Name)
		}
		return err
	}
	// As the real engine does: the binary must be there.
	if _, err := os.Stat(s.Binary); err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	f.deps[s.Name] = s
	return nil
}

func (f *fakeEngine) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.deps[name]; !ok {
		return fmt.Errorf("%w: %q", restarter.ErrNotFound, name)
	}
	delete(f.deps, name)
	return nil
}

func (f *fakeEngine) Scale(name string, minPool, maxPool int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.deps[name]
	if !ok {
		return fmt.Errorf("%w: %q", restarter.ErrNotFound, name)
	}
	s.Pool, s.MinPool, s.MaxPool = 0, minPool, maxPool
	if minPool == maxPool {
		s.Pool = minPool
	}
	f.deps[name] = s
	return nil
}

func (f *fakeEngine) Status() []restarter.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []restarter.Status
	for _, s := range f.deps {
		s := s.WithDefaults()
		out = append(out, restarter.Status{Name: s.Name, Topic: s.Topic, Group: s.Group, Pool: s.Pool, Warm: s.Pool,
			InFlight: 1, Processed: 7, Failed: 2, DeadLettered: 1, Restarts: 3, HolesFound: 1, Lag: 5, State: "running", Spec: s})
	}
	return out
}

func (f *fakeEngine) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeEngine) spec(name string) (restarter.Spec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.deps[name]
	return s, ok
}

// testConfig is a daemon over dir with fe as its engine and an external
// broker that is never dialled but by status.
func testConfig(dir string, fe *fakeEngine) Config {
	return Config{StateDir: dir, Brokers: "127.0.0.1:1", Listen: "127.0.0.1:0",
		newEngine: func(restarter.Config) (engine, error) { return fe, nil }}
}

type testDaemon struct {
	d      *daemon
	engine *fakeEngine
	srv    *httptest.Server
	client *Client
	stop   func()
}

// startTest starts a daemon over dir with a fake engine and serves its
// API with httptest. stop (also run at cleanup) shuts it down.
func startTest(t *testing.T, dir, token string) *testDaemon {
	t.Helper()
	fe := newFakeEngine()
	cfg := testConfig(dir, fe)
	cfg.Token = token
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	st, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := start(t.Context(), cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	d.logPoll = 10 * time.Millisecond
	srv := httptest.NewServer(d.handler())
	c, err := NewClient(srv.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			srv.Close()
			if err := d.stop(context.Background()); err != nil {
				t.Error(err)
			}
			st.close()
		})
	}
	t.Cleanup(stop)
	return &testDaemon{d: d, engine: fe, srv: srv, client: c, stop: stop}
}

// writeBinary writes an executable script and returns its path.
func writeBinary(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fn.sh")
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDeployCopiesTheBinaryAndSavesTheSpec(t *testing.T) {
	dir := t.TempDir()
	td := startTest(t, dir, "")
	src := writeBinary(t, "#!/bin/sh\necho v1\n")
	st, err := td.client.Deploy(t.Context(), restarter.Spec{Name: "hello", Binary: src, Topic: "names", Pool: 2, Env: []string{"A=1"}}, DeployParams{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "hello" || st.Topic != "names" || st.Pool != 2 || st.State != "running" {
		t.Errorf("status %+v", st)
	}

	bin := filepath.Join(dir, "bin", "hello")
	fi, err := os.Stat(bin)
	if err != nil || fi.Mode().Perm() != 0o755 || readFile(t, bin) != "#!/bin/sh\necho v1\n" {
		t.Fatalf("deployed binary: %v, %v", fi, err)
	}
	var saved restarter.Spec
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "deployments", "hello.json"))), &saved); err != nil {
		t.Fatal(err)
	}
	if saved.Binary != bin || saved.Topic != "names" || saved.Pool != 2 || len(saved.Env) != 1 {
		t.Errorf("saved spec %+v", saved)
	}
	if s, ok := td.engine.spec("hello"); !ok || s.Binary != bin {
		t.Errorf("engine got %+v", s)
	}

	// Rebuilding the source changes nothing that runs.
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho v2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if readFile(t, bin) != "#!/bin/sh\necho v1\n" {
		t.Error("the deployed binary followed its source")
	}
	// No temporary file is left behind.
	for _, sub := range []string{"bin", "deployments"} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		if len(entries) != 1 {
			t.Errorf("%s holds %d entries, want 1", sub, len(entries))
		}
	}
}

func TestDeploymentsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	first := startTest(t, dir, "")
	for _, name := range []string{"a", "b", "refused"} {
		if _, err := first.client.Deploy(t.Context(), restarter.Spec{Name: name, Binary: writeBinary(t, "#!/bin/sh\n"), Topic: "t-" + name}, DeployParams{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := first.client.Scale(t.Context(), "b", 4, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := first.client.Scale(t.Context(), "a", 0, 6); err != nil {
		t.Fatal(err)
	}
	var ae *APIError
	if _, err := first.client.Scale(t.Context(), "a", 7, 6); !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest ||
		!strings.Contains(err.Error(), "min pool must be from 0 to the max pool (6), got 7") {
		t.Errorf("scale to a min above the max: %v", err)
	}
	first.stop()
	if !first.engine.closed {
		t.Error("the engine was not closed")
	}
	// A spec file nobody can read is reported, not fatal.
	if err := os.WriteFile(filepath.Join(dir, "deployments", "broken.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}

	fe := newFakeEngine()
	fe.refuse["refused"] = errors.New("told to refuse")
	cfg := testConfig(dir, fe)
	cfg.setDefaults()
	st, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	d, err := start(t.Context(), cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop(context.Background())

	for name, pool := range map[string][3]int{"a": {0, 0, 6}, "b": {4, 4, 4}} {
		s, ok := fe.spec(name)
		if !ok || s.Binary != filepath.Join(dir, "bin", name) || s.Topic != "t-"+name || [3]int{s.Pool, s.MinPool, s.MaxPool} != pool {
			t.Errorf("restored %s: %+v", name, s)
		}
	}
	if d.restored != 2 {
		t.Errorf("restored %d, want 2", d.restored)
	}
	states := map[string]string{}
	for _, s := range d.list() {
		states[s.Name] = s.State + " " + s.Reason
	}
	if states["a"] != "running " || states["refused"] != "failed told to refuse" ||
		!strings.HasPrefix(states["broken"], "failed spec file broken.json") || len(states) != 4 {
		t.Errorf("states %q", states)
	}

	// A failed deployment cannot be scaled, but can be removed.
	srv := httptest.NewServer(d.handler())
	defer srv.Close()
	c, _ := NewClient(srv.URL, "")
	if _, err := c.Scale(t.Context(), "refused", 2, 2); !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict {
		t.Errorf("scale a failed deployment: %v", err)
	}
	for _, name := range []string{"refused", "broken"} {
		if err := c.Remove(t.Context(), name); err != nil {
			t.Errorf("remove %s: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "deployments", name+".json")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s's spec is still there: %v", name, err)
		}
	}
}

func TestRemoveDeletesTheDeployment(t *testing.T) {
	dir := t.TempDir()
	td := startTest(t, dir, "")
	if _, err := td.client.Deploy(t.Context(), restarter.Spec{Name: "hello", Binary: writeBinary(t, "#!/bin/sh\n"), Topic: "t"}, DeployParams{}); err != nil {
		t.Fatal(err)
	}
	appendLog(t, filepath.Join(dir, "logs", "hello.log"), "output of the removed deployment\n")
	if err := td.client.Remove(t.Context(), "hello"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"deployments/hello.json", "bin/hello", "logs/hello.log"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists: %v", p, err)
		}
	}
	if _, ok := td.engine.spec("hello"); ok {
		t.Error("the engine still runs it")
	}
	sts, err := td.client.List(t.Context())
	if err != nil || len(sts) != 0 {
		t.Errorf("list: %v %+v", err, sts)
	}
	var ae *APIError
	if err := td.client.Remove(t.Context(), "hello"); !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound || err.Error() != `no such deployment: "hello"` {
		t.Errorf("second remove: %v", err)
	}
}

// Every endpoint answers an unknown deployment with 404 and a JSON error.
func TestUnknownDeploymentIs404(t *testing.T) {
	td := startTest(t, t.TempDir(), "")
	for _, r := range []struct{ method, path, body string }{
		{"DELETE", "/v1/deployments/nope", ""},
		{"POST", "/v1/deployments/nope/scale", `{"pool":2}`},
		{"GET", "/v1/deployments/nope/logs", ""},
		{"GET", "/v1/nope", ""},
	} {
		code, body := call(t, td.srv.URL, r.method, r.path, r.body, "")
		var eb errorBody
		if code != http.StatusNotFound || json.Unmarshal([]byte(body), &eb) != nil || eb.Error == "" {
			t.Errorf("%s %s: %d %s", r.method, r.path, code, body)
		}
	}
}

func TestBadInputIs400AndChangesNothing(t *testing.T) {
	dir := t.TempDir()
	td := startTest(t, dir, "")
	bin := writeBinary(t, "#!/bin/sh\n")
	spec := strings.NewReplacer("BIN", bin, "DIR", t.TempDir()).Replace
	for _, r := range []struct{ method, path, body, want string }{
		{"PUT", "/v1/deployments/x", spec(`{"binary":"relative/fn","topic":"t"}`), "want an absolute path"},
		{"PUT", "/v1/deployments/x", `{"binary":"/no/such/fn","topic":"t"}`, "no such file on the daemon's host"},
		{"PUT", "/v1/deployments/x", spec(`{"binary":"DIR","topic":"t"}`), "is not a regular file"},
		{"PUT", "/v1/deployments/x", spec(`{"binary":"BIN"}`), "no topic"},
		{"PUT", "/v1/deployments/x", spec(`{"binary":"BIN","topic":"t","pool":-1}`), "pool must be at least 1"},
		{"PUT", "/v1/deployments/x", spec(`{"binary":"BIN","topic":"t","order":"random"}`), "order must be key, partition or none"},
		{"PUT", "/v1/deployments/x", spec(`{"binary":"BIN","topic":"t","env":["NOEQ"]}`), `env "NOEQ": want K=V`},
		{"PUT", "/v1/deployments/x", spec(`{"binary":"BIN","topic":"t","colour":"red"}`), `unknown field "colour"`},
		{"PUT", "/v1/deployments/x", spec(`{"name":"y","binary":"BIN","topic":"t"}`), `the spec names "y" but the URL "x"`},
		{"PUT", "/v1/deployments/..%2Fescape", spec(`{"binary":"BIN","topic":"t"}`), `name "../escape"`},
		{"PUT", "/v1/deployments/x", `not json`, "request body"},
		{"POST", "/v1/deployments/x/scale", `{"pool":0}`, "pool must be at least 1, got 0"},
		{"GET", "/v1/deployments/x/logs?tail=-1", ``, "tail must be a number"},
		{"PUT", "/v1/deployments/x", spec(`{"binary":"BIN","topic":"a topic"}`), `topic "a topic": want 1-249 letters`},
		{"PUT", "/v1/deployments/x", spec(`{"binary":"BIN","topic":"t","dead_letter":"t/dlq"}`), `dead-letter topic "t/dlq"`},
		{"PUT", "/v1/deployments/x", spec(`{"binary":"BIN","topic":"t","group":"a group"}`), `consumer group "a group": want`},
		{"PUT", "/v1/deployments/x?dry_run=maybe", spec(`{"binary":"BIN","topic":"t"}`), `dry_run must be 0 or 1`},
		{"DELETE", "/v1/deployments/-x", ``, `name "-x": want 1-63`},
		{"POST", "/v1/deployments/-x/scale", `{"pool":2}`, `name "-x": want 1-63`},
		{"GET", "/v1/deployments/-x/logs", ``, `name "-x": want 1-63`},
	} {
		code, body := call(t, td.srv.URL, r.method, r.path, r.body, "")
		var eb errorBody
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &eb) != nil || !strings.Contains(eb.Error, r.want) {
			t.Errorf("%s %s %s: %d %s, want 400 containing %q", r.method, r.path, r.body, code, body, r.want)
		}
	}
	for _, sub := range []string{"bin", "deployments"} {
		if entries, _ := os.ReadDir(filepath.Join(dir, sub)); len(entries) != 0 {
			t.Errorf("%s: %v", sub, entries)
		}
	}
}

// A deploy of a name that is deployed says so, with the spec it replaced
// and whether the binary changed; a dry run answers the same and changes
// nothing.
func TestDeployReportsWhatItReplaces(t *testing.T) {
	dir := t.TempDir()
	td := startTest(t, dir, "")
	v1 := writeBinary(t, "v1")
	res, err := td.client.Deploy(t.Context(), restarter.Spec{Name: "hello", Binary: v1, Topic: "t"}, DeployParams{})
	if err != nil || res.Previous != nil || res.BinaryChanged || res.DryRun || res.State != "running" {
		t.Fatalf("first deploy: %+v %v", res, err)
	}
	if _, err := td.client.Scale(t.Context(), "hello", 4, 4); err != nil {
		t.Fatal(err)
	}

	v2 := writeBinary(t, "v2")
	res, err = td.client.Deploy(t.Context(), restarter.Spec{Name: "hello", Binary: v2, Topic: "t", Pool: 2}, DeployParams{DryRun: true})
	if err != nil || res.Previous == nil || res.Previous.Pool != 4 || !res.BinaryChanged || !res.DryRun || res.Pool != 2 {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if s, _ := td.engine.spec("hello"); s.Pool != 4 || readFile(t, s.Binary) != "v1" {
		t.Errorf("the dry run changed what runs: %+v", s)
	}
	if got := readFile(t, filepath.Join(dir, "deployments", "hello.json")); !strings.Contains(got, `"pool": 4`) {
		t.Errorf("the dry run changed the saved spec: %s", got)
	}

	res, err = td.client.Deploy(t.Context(), restarter.Spec{Name: "hello", Binary: v1, Topic: "t"}, DeployParams{})
	if err != nil || res.Previous == nil || res.Previous.Pool != 4 || res.BinaryChanged || res.Pool != 1 {
		t.Errorf("same binary: %+v %v", res, err)
	}
	res, err = td.client.Deploy(t.Context(), restarter.Spec{Name: "hello", Binary: v2, Topic: "t"}, DeployParams{})
	if err != nil || res.Previous == nil || !res.BinaryChanged {
		t.Errorf("new binary: %+v %v", res, err)
	}
	// A dry run of a new name is a dry run of a first deploy.
	res, err = td.client.Deploy(t.Context(), restarter.Spec{Name: "other", Binary: v2, Topic: "t"}, DeployParams{DryRun: true})
	if err != nil || res.Previous != nil || !res.DryRun || res.Group != "other" {
		t.Errorf("dry run of a new name: %+v %v", res, err)
	}
	for _, p := range []string{"deployments/other.json", "bin/other"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the dry run wrote %s: %v", p, err)
		}
	}
}

// Two deployments in one consumer group split a topic's messages: the
// daemon refuses that unless asked to share, and says why.
func TestDeployRefusesASharedGroup(t *testing.T) {
	td := startTest(t, t.TempDir(), "")
	bin := writeBinary(t, "#!/bin/sh\n")
	if _, err := td.client.Deploy(t.Context(), restarter.Spec{Name: "greeter", Binary: bin, Topic: "names"}, DeployParams{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		spec restarter.Spec
		want string
	}{
		{restarter.Spec{Name: "g1", Binary: bin, Topic: "names", Group: "greeter"},
			`consumer group "greeter" is already deployment "greeter"'s: both would consume names and split its messages between them; ` +
				"to share the group on purpose, pass --group greeter; for a consumer of its own, pass another --group"},
		{restarter.Spec{Name: "g2", Binary: bin, Topic: "other", Group: "greeter"},
			`consumer group "greeter" is already deployment "greeter"'s: deployments in one group rebalance together (greeter consumes names)`},
		{restarter.Spec{Name: "greeter-2", Binary: bin, Topic: "names", Group: "greeter"}, `consumer group "greeter" is already deployment "greeter"'s`},
	} {
		for _, dry := range []bool{true, false} {
			_, err := td.client.Deploy(t.Context(), c.spec, DeployParams{DryRun: dry})
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("%s (dry run %v): %v, want 409 starting %q", c.spec.Name, dry, err, c.want)
			}
		}
		if _, ok := td.engine.spec(c.spec.Name); ok {
			t.Errorf("%s was deployed", c.spec.Name)
		}
	}
	// Its own group, or sharing on purpose, is fine; so is replacing the
	// deployment that has the group.
	for _, c := range []struct {
		spec restarter.Spec
		p    DeployParams
	}{
		{restarter.Spec{Name: "g1", Binary: bin, Topic: "names"}, DeployParams{}},
		{restarter.Spec{Name: "g2", Binary: bin, Topic: "names", Group: "greeter"}, DeployParams{ShareGroup: true}},
		{restarter.Spec{Name: "greeter", Binary: bin, Topic: "names", Pool: 2}, DeployParams{ShareGroup: true}},
	} {
		if _, err := td.client.Deploy(t.Context(), c.spec, c.p); err != nil {
			t.Errorf("%s: %v", c.spec.Name, err)
		}
	}
}

// If the engine refuses a new version, the previous one stays, binary and
// spec; a refused first version leaves nothing.
func TestRefusedDeployKeepsThePreviousVersion(t *testing.T) {
	dir := t.TempDir()
	td := startTest(t, dir, "")
	if _, err := td.client.Deploy(t.Context(), restarter.Spec{Name: "hello", Binary: writeBinary(t, "v1"), Topic: "t1"}, DeployParams{}); err != nil {
		t.Fatal(err)
	}
	td.engine.refuse["hello"] = errors.New("told to refuse")
	td.engine.refuse["new"] = errors.New("told to refuse")
	var ae *APIError
	_, err := td.client.Deploy(t.Context(), restarter.Spec{Name: "hello", Binary: writeBinary(t, "v2"), Topic: "t2"}, DeployParams{})
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusInternalServerError || !strings.Contains(err.Error(), "told to refuse") {
		t.Fatalf("deploy: %v", err)
	}
	if got := readFile(t, filepath.Join(dir, "bin", "hello")); got != "v1" {
		t.Errorf("binary %q, want v1", got)
	}
	if got := readFile(t, filepath.Join(dir, "deployments", "hello.json")); !strings.Contains(got, `"t1"`) {
		t.Errorf("spec %s, want topic t1", got)
	}
	if _, err := td.client.Deploy(t.Context(), restarter.Spec{Name: "new", Binary: writeBinary(t, "v1"), Topic: "t"}, DeployParams{}); err == nil {
		t.Fatal("deploy of a refused spec succeeded")
	}
	for _, p := range []string{"bin/new", "deployments/new.json", "bin/.hello.prev"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists: %v", p, err)
		}
	}

	// An engine that stopped the previous version before refusing the new
	// one gets the previous version back.
	delete(td.engine.refuse, "hello")
	td.engine.refuseTopic["t3"] = errors.New("cannot reach Kafka")
	td.engine.stopFirst = true
	if _, err := td.client.Deploy(t.Context(), restarter.Spec{Name: "hello", Binary: writeBinary(t, "v3"), Topic: "t3"}, DeployParams{}); err == nil {
		t.Fatal("deploy of a refused spec succeeded")
	}
	if s, ok := td.engine.spec("hello"); !ok || s.Topic != "t1" || readFile(t, s.Binary) != "v1" {
		t.Errorf("the engine runs %+v, want the previous version", s)
	}
}

func TestTokenRequiredBeyondLoopback(t *testing.T) {
	for _, c := range []struct {
		listen, token string
		ok            bool
	}{
		{"127.0.0.1:7077", "", true},
		{"127.8.9.10:7077", "", true},
		{"[::1]:7077", "", true},
		{"localhost:7077", "", true},
		{"0.0.0.0:7077", "", false},
		{":7077", "", false},
		{"[::]:7077", "", false},
		{"192.0.2.1:7077", "", false},
		{"0.0.0.0:7077", "s3cret", true},
	} {
		cfg := Config{StateDir: "/x", Listen: c.listen, Token: c.token}
		cfg.setDefaults()
		err := cfg.validate()
		if c.ok != (err == nil) {
			t.Errorf("listen %s token %q: %v", c.listen, c.token, err)
		}
		want := "listening on " + c.listen + " requires --token (or FN_TOKEN)"
		if err != nil && err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}
	// Run refuses before touching the state directory.
	dir := filepath.Join(t.TempDir(), "state")
	err := Run(t.Context(), Config{StateDir: dir, Listen: "0.0.0.0:0"})
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Run: %v, want a ConfigError", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory created: %v", err)
	}
}

func TestTokenIsEnforced(t *testing.T) {
	td := startTest(t, t.TempDir(), "s3cret")
	if _, err := td.client.List(t.Context()); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cre", "Basic s3cret", "s3cret"} {
		for _, path := range []string{"/v1/deployments", "/v1/status", "/metrics"} {
			code, body := call(t, td.srv.URL, "GET", path, "", auth)
			if code != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
				t.Errorf("GET %s with %q: %d %s", path, auth, code, body)
			}
		}
	}
	c, _ := NewClient(td.srv.URL, "")
	var ae *APIError
	if _, err := c.List(t.Context()); !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized || !strings.Contains(err.Error(), "FN_TOKEN") {
		t.Errorf("without a token: %v", err)
	}
}

// A second daemon on the same state directory fails at once, naming the
// first; once the first stops, the directory is free again.
func TestLockRefusesASecondDaemon(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan Ready, 1)
	cfg := testConfig(dir, newFakeEngine())
	cfg.OnReady = func(r Ready) { ready <- r }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("first daemon: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("first daemon never ready")
	}

	err := Run(t.Context(), testConfig(dir, newFakeEngine()))
	want := fmt.Sprintf("another fnctl daemon is using the state directory %s (pid %d)", dir, os.Getpid())
	if !errors.Is(err, ErrLocked) || err.Error() != want {
		t.Errorf("second daemon: %v, want %q", err, want)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("first daemon: %v", err)
	}
	st, err := openState(dir)
	if err != nil {
		t.Fatalf("after the first daemon stopped: %v", err)
	}
	st.close()
}

func TestMetricsPerDeployment(t *testing.T) {
	td := startTest(t, t.TempDir(), "")
	for _, name := range []string{"hello", "bye"} {
		if _, err := td.client.Deploy(t.Context(), restarter.Spec{Name: name, Binary: writeBinary(t, "#!/bin/sh\n"), Topic: "t", Pool: 2}, DeployParams{}); err != nil {
			t.Fatal(err)
		}
	}
	code, body := call(t, td.srv.URL, "GET", "/metrics", "", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	for _, want := range []string{
		`microfn_pool_size{deployment="hello"} 2`,
		`microfn_pool_size{deployment="bye"} 2`,
		`microfn_warm_processes{deployment="hello"} 2`,
		`microfn_inflight{deployment="hello"} 1`,
		`microfn_processed_total{deployment="hello"} 7`,
		`microfn_failed_total{deployment="hello"} 2`,
		`microfn_dead_lettered_total{deployment="hello"} 1`,
		`microfn_restarts_total{deployment="hello"} 3`,
		`microfn_lag{deployment="hello"} 5`,
		`microfn_holes_total{deployment="hello"} 1`,
		"# TYPE microfn_processed_total counter",
		"# TYPE microfn_lag gauge",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestStatusOverview(t *testing.T) {
	dir := t.TempDir()
	td := startTest(t, dir, "")
	if _, err := td.client.Deploy(t.Context(), restarter.Spec{Name: "hello", Binary: writeBinary(t, "#!/bin/sh\n"), Topic: "t"}, DeployParams{}); err != nil {
		t.Fatal(err)
	}
	o, err := td.client.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if o.Daemon.PID != os.Getpid() || o.Daemon.StateDir != dir || o.Daemon.Version == "" || o.Daemon.Uptime < 0 {
		t.Errorf("daemon %+v", o.Daemon)
	}
	if o.Broker.Kind != "external" || len(o.Broker.Addrs) != 1 || o.Broker.Addrs[0] != "127.0.0.1:1" || o.Broker.Reachable {
		t.Errorf("broker %+v", o.Broker)
	}
	if len(o.Deployments) != 1 || o.Deployments[0].Name != "hello" {
		t.Errorf("deployments %+v", o.Deployments)
	}
}

func TestLogsTailAndFollow(t *testing.T) {
	dir := t.TempDir()
	td := startTest(t, dir, "")
	if _, err := td.client.Deploy(t.Context(), restarter.Spec{Name: "hello", Binary: writeBinary(t, "#!/bin/sh\n"), Topic: "t"}, DeployParams{}); err != nil {
		t.Fatal(err)
	}
	// No output yet is no error.
	var sb strings.Builder
	if err := td.client.Logs(t.Context(), "hello", false, 10, &sb); err != nil || sb.String() != "" {
		t.Fatalf("empty log: %v %q", err, sb.String())
	}
	path := filepath.Join(dir, "logs", "hello.log")
	appendLog(t, path, "one\ntwo\nthree\n")
	for tail, want := range map[int]string{0: "", 2: "two\nthree\n", 100: "one\ntwo\nthree\n"} {
		sb.Reset()
		if err := td.client.Logs(t.Context(), "hello", false, tail, &sb); err != nil || sb.String() != want {
			t.Errorf("tail %d: %v %q, want %q", tail, err, sb.String(), want)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := td.client.Logs(ctx, "hello", true, 1, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	lines := bufio.NewScanner(pr)
	next := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("follow ended: %v", lines.Err())
		}
		return lines.Text()
	}
	if got := next(); got != "three" {
		t.Fatalf("first line %q", got)
	}
	appendLog(t, path, "four\n")
	if got := next(); got != "four" {
		t.Fatalf("appended line %q", got)
	}
	// Truncation (a rotated log) starts over.
	if err := os.WriteFile(path, []byte("five\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "five" {
		t.Fatalf("after truncation %q", got)
	}
	// Removing the deployment ends the stream.
	if err := td.client.Remove(t.Context(), "hello"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("follow: %v", err)
	}
}

// Logs reads a deployment's log from the state directory with no daemon,
// as the API does.
func TestLogsWithoutADaemon(t *testing.T) {
	dir := t.TempDir()
	td := startTest(t, dir, "")
	if _, err := td.client.Deploy(t.Context(), restarter.Spec{Name: "hello", Binary: writeBinary(t, "#!/bin/sh\n"), Topic: "t"}, DeployParams{}); err != nil {
		t.Fatal(err)
	}
	td.stop()
	var sb strings.Builder
	if err := Logs(t.Context(), dir, "hello", 10, false, &sb); err != nil || sb.String() != "" {
		t.Fatalf("no output yet: %v %q", err, sb.String())
	}
	path := filepath.Join(dir, "logs", "hello.log")
	appendLog(t, path, "one\ntwo\nthree\n")
	sb.Reset()
	if err := Logs(t.Context(), dir, "hello", 2, false, &sb); err != nil || sb.String() != "two\nthree\n" {
		t.Errorf("tail 2: %v %q", err, sb.String())
	}
	for name, want := range map[string]string{"nope": `no such deployment: "nope" in the state directory ` + dir, "../x": `name "../x": want`} {
		err := Logs(t.Context(), dir, name, 10, false, &sb)
		if err == nil || !strings.HasPrefix(err.Error(), want) || errors.Is(err, restarter.ErrNotFound) != (name == "nope") {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}

	// Following ends when the deployment's files are removed, after the
	// lines written before.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := Logs(ctx, dir, "hello", 1, true, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() || lines.Text() != "three" {
		t.Fatalf("first line %q %v", lines.Text(), lines.Err())
	}
	appendLog(t, path, "four\n")
	if !lines.Scan() || lines.Text() != "four" {
		t.Fatalf("appended line %q %v", lines.Text(), lines.Err())
	}
	for _, p := range []string{"deployments/hello.json", "logs/hello.log"} {
		if err := os.Remove(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	for lines.Scan() {
		t.Errorf("unexpected line %q", lines.Text())
	}
	if err := <-done; err != nil {
		t.Fatalf("follow: %v", err)
	}
}

func appendLog(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestLastLines(t *testing.T) {
	long := strings.Repeat("x", 40<<10) // longer than one read
	for _, c := range []struct {
		content string
		n       int
		want    string
	}{
		{"", 3, ""},
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 9, "a\nb\nc\n"},
		{"a\nb\nc", 1, "c"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\n\n\n", 2, "\n\n"},
		{"a\n" + long + "\nb\n", 2, long + "\nb\n"},
		{long + "\n" + long + "\n", 1, long + "\n"},
	} {
		p := filepath.Join(t.TempDir(), "log")
		if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		off, err := lastLines(f, c.n)
		f.Close()
		if err != nil || c.content[off:] != c.want {
			t.Errorf("lastLines(%.20q, %d) = %d %v, want %.20q", c.content, c.n, off, err, c.want)
		}
	}
}

func TestClientErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := NewClient(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.List(t.Context())
	want := "no fnctl daemon at " + addr + " (start one with `fnctl up`)"
	if !errors.Is(err, ErrNoDaemon) || err.Error() != want {
		t.Errorf("no daemon: %v, want %q", err, want)
	}
	for _, bad := range []string{"http://", "ftp://host:1", "::"} {
		if _, err := NewClient(bad, ""); err == nil {
			t.Errorf("NewClient(%q) accepted", bad)
		}
	}
}

// The daemon as `fnctl up` runs it: the embedded broker in the state
// directory and the real engine.
func TestRunWithTheEmbeddedBroker(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan Ready, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{StateDir: dir, BrokerListen: "127.0.0.1:0", Listen: "127.0.0.1:0",
			OnReady: func(r Ready) { ready <- r }})
	}()
	var r Ready
	select {
	case r = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("never ready")
	}
	if r.Broker.Kind != "embedded" || !r.Broker.Reachable || r.StateDir != dir || r.Restored != 0 {
		t.Errorf("ready %+v", r)
	}
	c, err := NewClient(r.API, "")
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.Status(t.Context())
	if err != nil || o.Broker.Kind != "embedded" || !o.Broker.Reachable || len(o.Deployments) != 0 {
		t.Errorf("status %+v %v", o, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "broker")); len(entries) == 0 {
		t.Error("the embedded broker kept nothing in the state directory")
	}
}

// call sends a raw request and returns the status code and body.
func call(t *testing.T, base, method, path, body, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("%s %s: error with content type %q", method, path, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, string(b)
}
