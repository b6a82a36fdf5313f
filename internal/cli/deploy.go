package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/microfn/microfn/internal/daemon"
	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/fnproto"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/kconn"
	"github.com/microfn/microfn/restarter"
)

// DeployOptions are the flags of `fnctl deploy`. Zero values of Topic,
// Group, DeadLetter, Timeout and Attempts mean: as the binary declares
// (then the defaults).
type DeployOptions struct {
	IO IO
	ServerOptions
	// Path is a Go package (a directory or an import path) or an
	// executable file.
	Path string
	// Args go to the function, after "--".
	Args       []string
	Name       string
	Subscriber string
	Topic      string
	Group      string
	DeadLetter string
	poolFlags
	Timeout  time.Duration
	Attempts int
	Order    string
	Env      []string
	// KafkaEnv gives the function processes the daemon's Kafka connection.
	KafkaEnv bool
	// Kafka is how this command connects to the daemon's Kafka to check
	// the topic exists.
	Kafka kconn.Settings
	// Memory is the memory limit of one invocation in bytes; 0: none.
	Memory int64
	Plain  bool
	// ShareGroup: Group was given on purpose, so it may be another
	// deployment's too.
	ShareGroup bool
	DryRun     bool
}

// describeTimeout bounds `BINARY --describe`: a binary that does not
// answer is not built with fn.
const describeTimeout = 10 * time.Second

func newCmdDeploy(streams IO, run func(context.Context, DeployOptions) error) *cobra.Command {
	if run == nil {
		run = runDeploy
	}
	opts := DeployOptions{IO: streams}
	var memory string
	cmd := &cobra.Command{
		Use:   "deploy PATH [flags] [-- ARGS]",
		Short: "Deploy a function to the restarter daemon",
		Long: `Deploy the function at PATH to the daemon of 'fnctl up'.

PATH is a Go package with package main (a directory or an import path),
which fnctl builds with the go command, or an
executable file, used as is. fnctl runs the binary with --describe to
read the subscribers it declares: the subscriber's topic, group,
timeout, attempts and dead-letter topic become the deployment's, and the
flags override them. A binary that declares several subscribers needs
--subscriber.

--plain deploys an executable that does not use microfn's fn package: it
gets the message value on stdin and the key and headers in FN_KEY and
FN_HEADER_<NAME>, exit code 0 acknowledges, and it needs --topic. It is
named after its file (resize.sh deploys as resize.sh) unless --name.

The consumer group defaults to the subscriber's, so a second deployment
of the same function under another --name would join the first one's
group and get only part of the messages: the daemon refuses that unless
--group is given, which names the group on purpose (the same group to
share the messages, another for a consumer of its own).

The daemon copies the binary, so rebuilding PATH changes nothing until
the next deploy. Deploying a name again replaces that deployment (its
counters start again) and says what changed; --dry-run prints the spec
and what the deploy would do, and changes nothing. ARGS after -- are
passed to every function process.

--pool N keeps N processes warm and runs at most N messages at once.
--min-pool and --max-pool let the pool follow the work instead: it grows
at once while runnable messages wait for a process (up to --max-pool;
messages held back by --order count for nothing), and shrinks after
--scale-down-after with fewer busy (down to --min-pool). With
--min-pool 0 an idle deployment keeps no process, and its next message
waits for one to start (a cold start). A pool in a crash loop does not
grow.`,
		Example: `  fnctl deploy ./examples/greeter
  fnctl deploy ./examples/greeter --pool 4 --dry-run
  fnctl deploy ./examples/greeter --min-pool 0 --max-pool 8
  fnctl deploy ./examples/greeter --name greeter-eu --topic names-eu --group greeter-eu
  fnctl deploy ./resize.sh --plain --topic images --env QUALITY=80 -- --verbose`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				args, opts.Args = args[:dash], args[dash:]
			}
			if len(args) != 1 || args[0] == "" {
				return usagef("want PATH (a Go package or an executable), got %d argument(s)", len(args))
			}
			opts.Path = args[0]
			if err := checkNameFlags(cmd, opts); err != nil {
				return err
			}
			opts.ShareGroup = cmd.Flags().Changed("group")
			if err := opts.poolFlags.check(cmd); err != nil {
				return err
			}
			switch restarter.Order(opts.Order) {
			case restarter.OrderKey, restarter.OrderPartition, restarter.OrderNone:
			default:
				return usagef("--order must be key, partition or none, got %q", opts.Order)
			}
			if cmd.Flags().Changed("timeout") && opts.Timeout <= 0 {
				return usagef("--timeout must be positive, got %v", opts.Timeout)
			}
			if cmd.Flags().Changed("attempts") && opts.Attempts < 1 {
				return usagef("--attempts must be at least 1, got %d", opts.Attempts)
			}
			for _, kv := range opts.Env {
				if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
					return usagef("malformed --env %q: want K=V", kv)
				}
			}
			if memory != "" {
				n, err := parseSize(memory)
				if err != nil {
					return usagef("--memory %q: want a size like 256MiB", memory)
				}
				opts.Memory = n
			}
			if opts.Plain && opts.Topic == "" {
				return usagef("--plain needs --topic: a plain executable declares no subscribers")
			}
			if opts.Plain && opts.Subscriber != "" {
				return usagef("--subscriber and --plain exclude each other: a plain executable declares no subscribers")
			}
			return run(cmd.Context(), opts)
		},
	}
	addServerFlags(cmd, &opts.ServerOptions)
	f := cmd.Flags()
	f.StringVar(&opts.Name, "name", "", "deployment name (default: the subscriber's name)")
	f.StringVar(&opts.Subscriber, "subscriber", "", "the subscriber to deploy, when the binary declares several")
	f.StringVar(&opts.Topic, "topic", "", "topic to consume (default: the subscriber's)")
	f.StringVar(&opts.Group, "group", "", "consumer group (default: the subscriber's)")
	addPoolFlags(cmd, &opts.poolFlags, restarter.DefaultPool)
	f.DurationVar(&opts.Timeout, "timeout", 0, "deadline of one invocation (default: the subscriber's, else 30s)")
	f.IntVar(&opts.Attempts, "attempts", 0, "attempts before dead-lettering (default: the subscriber's, else 3)")
	f.StringVar(&opts.Order, "order", string(restarter.OrderKey), "which messages may run at once: key, partition or none")
	f.StringVar(&opts.DeadLetter, "dlq", "", "dead-letter topic (default: the subscriber's, else TOPIC.dlq)")
	f.StringArrayVar(&opts.Env, "env", nil, "environment variable K=V of the function (repeatable)")
	f.BoolVar(&opts.KafkaEnv, "kafka-env", false, "give the function processes the daemon's Kafka connection (FN_BROKERS, FN_TLS_*, FN_SASL_*), for a function with Kafka clients of its own")
	addKafkaFlags(f, &opts.Kafka)
	f.StringVar(&memory, "memory", "", "memory limit of one invocation, like 256MiB (default: none)")
	f.BoolVar(&opts.Plain, "plain", false, "PATH is an executable not built with fn (needs --topic)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the spec and what the deploy would do, and change nothing")
	return cmd
}

// checkNameFlags refuses an empty or invalid --name, --subscriber,
// --topic, --group or --dlq: an empty one is not the same as none.
func checkNameFlags(cmd *cobra.Command, opts DeployOptions) error {
	for _, c := range []struct {
		flag, value string
		check       func(string) error
	}{
		{"name", opts.Name, restarter.ValidateName},
		{"subscriber", opts.Subscriber, func(s string) error {
			if s == "" {
				return errors.New("empty subscriber name")
			}
			return nil
		}},
		{"topic", opts.Topic, kafka.ValidateTopic},
		{"group", opts.Group, kafka.ValidateGroup},
		{"dlq", opts.DeadLetter, kafka.ValidateTopic},
	} {
		if cmd.Flags().Changed(c.flag) {
			if err := c.check(c.value); err != nil {
				return usagef("--%s: %w", c.flag, err)
			}
		}
	}
	return nil
}

func runDeploy(ctx context.Context, opts DeployOptions) error {
	client, err := opts.client()
	if err != nil {
		return err
	}
	spec, cleanup, err := prepareDeploy(ctx, opts)
	if err != nil {
		return err
	}
	defer cleanup()
	warnIfTopicMissing(ctx, opts.IO.Err, client, opts.Kafka, spec.Topic)
	res, err := client.Deploy(ctx, spec, daemon.DeployParams{DryRun: opts.DryRun, ShareGroup: opts.ShareGroup})
	switch {
	case opts.DryRun && errors.Is(err, daemon.ErrNoDaemon):
		// The spec is still worth seeing; what it would replace is not known.
		spec.Binary = opts.Path
		if err := printJSON(opts.IO, spec.WithDefaults()); err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.Err, "dry run: would deploy %s; %v, so not compared with what is deployed\n", spec.Name, err)
		return nil
	case err != nil:
		return fromDaemon(err)
	case opts.DryRun:
		if err := printJSON(opts.IO, res.Spec.WithDefaults()); err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.Err, "dry run: %s\n", deployLine(res))
		return nil
	}
	fmt.Fprintln(opts.IO.Err, deployLine(res))
	return nil
}

// deployLine says what a deploy did (or, dry, would do): a first deploy,
// or a replacement and what it changed.
func deployLine(res daemon.DeployResult) string {
	switch {
	case res.DryRun && res.Previous != nil:
		return fmt.Sprintf("would replace %s: topic %s, group %s, pool %s%s", res.Name, res.Topic, res.Group, poolText(res.Spec), changes(res))
	case res.DryRun:
		return fmt.Sprintf("would deploy %s: topic %s, group %s, pool %s", res.Name, res.Topic, res.Group, poolText(res.Spec))
	case res.Previous != nil:
		return "replaced " + statusLine(res.Status) + changes(res)
	}
	return "deployed " + statusLine(res.Status)
}

// changes lists what a replacement changes, "" for a first deploy.
func changes(res daemon.DeployResult) string {
	if res.Previous == nil {
		return ""
	}
	diff := specChanges(*res.Previous, res.Spec)
	if res.BinaryChanged {
		diff = append([]string{"new binary"}, diff...)
	}
	if len(diff) == 0 {
		return " (nothing changed: same binary and spec)"
	}
	return " (" + strings.Join(diff, ", ") + ")"
}

// specChanges lists the settings that differ between two specs, defaults
// filled in, as "setting old -> new".
func specChanges(prev, next restarter.Spec) []string {
	a, b := prev.WithDefaults(), next.WithDefaults()
	var out []string
	add := func(what string, x, y any) {
		if xs, ys := fmt.Sprint(x), fmt.Sprint(y); xs != ys {
			out = append(out, fmt.Sprintf("%s %s -> %s", what, xs, ys))
		}
	}
	add("subscriber", a.Subscriber, b.Subscriber)
	add("topic", a.Topic, b.Topic)
	add("group", a.Group, b.Group)
	add("dead-letter topic", a.DeadLetter, b.DeadLetter)
	add("pool", poolText(a), poolText(b))
	add("scale-down period", time.Duration(a.ScaleDownAfter), time.Duration(b.ScaleDownAfter))
	add("timeout", time.Duration(a.Timeout), time.Duration(b.Timeout))
	add("attempts", a.MaxAttempts, b.MaxAttempts)
	add("order", a.Order, b.Order)
	add("memory", a.MemoryLimit, b.MemoryLimit)
	add("plain", a.Plain, b.Plain)
	add("env", a.Env, b.Env)
	add("kafka env", a.KafkaEnv, b.KafkaEnv)
	add("args", a.Args, b.Args)
	return out
}

// prepareDeploy turns PATH and the flags into a spec: it builds PATH when
// it is a Go package and, unless --plain, reads the binary's manifest.
// cleanup removes the build once the daemon has copied it.
func prepareDeploy(ctx context.Context, opts DeployOptions) (spec restarter.Spec, cleanup func(), err error) {
	bin, cleanup, err := functionBinary(ctx, opts.Path)
	if err != nil {
		return restarter.Spec{}, nil, err
	}
	spec, err = specFor(ctx, opts, bin)
	if err != nil {
		cleanup()
		return restarter.Spec{}, nil, err
	}
	return spec, cleanup, nil
}

// specFor is the spec of bin: as its manifest declares, then the flags.
func specFor(ctx context.Context, opts DeployOptions, bin string) (restarter.Spec, error) {
	spec := restarter.Spec{Binary: bin, Args: opts.Args, Env: opts.Env, KafkaEnv: opts.KafkaEnv, Plain: opts.Plain,
		Order: restarter.Order(opts.Order), MemoryLimit: opts.Memory}
	opts.poolFlags.apply(&spec)
	if opts.Plain {
		// The file's name as is: a name the user did not type would be
		// one more name for every other command to guess.
		spec.Name = filepath.Base(opts.Path)
	} else {
		m, err := describe(ctx, opts.Path, bin)
		if err != nil {
			return restarter.Spec{}, err
		}
		sub, err := chooseSubscriber(opts.Path, m, opts.Subscriber)
		if err != nil {
			return restarter.Spec{}, err
		}
		spec.Name, spec.Subscriber, spec.Topic, spec.Group = sub.Name, sub.Name, sub.Topic, sub.Group
		spec.MaxAttempts, spec.DeadLetter = sub.MaxAttempts, sub.DeadLetter
		if sub.Timeout != "" {
			d, err := time.ParseDuration(sub.Timeout)
			if err != nil {
				return restarter.Spec{}, fmt.Errorf("%s: manifest timeout %q: %w", opts.Path, sub.Timeout, err)
			}
			spec.Timeout = restarter.Duration(d)
		}
		// A dead-letter topic derived from the declared topic follows
		// --topic, as it does for the binary's FN_TOPIC.
		if opts.Topic != "" && sub.DeadLetter == sub.Topic+delivery.DeadLetterSuffix {
			spec.DeadLetter = ""
		}
	}
	spec.Name = cmp.Or(opts.Name, spec.Name)
	spec.Topic = cmp.Or(opts.Topic, spec.Topic)
	spec.Group = cmp.Or(opts.Group, spec.Group)
	spec.DeadLetter = cmp.Or(opts.DeadLetter, spec.DeadLetter)
	if opts.Timeout > 0 {
		spec.Timeout = restarter.Duration(opts.Timeout)
	}
	if opts.Attempts > 0 {
		spec.MaxAttempts = opts.Attempts
	}
	if opts.Name == "" {
		if err := restarter.ValidateName(spec.Name); err != nil {
			return restarter.Spec{}, usagef("%s cannot name the deployment (%v): choose a name with --name", spec.Name, err)
		}
	}
	return spec, nil
}

// functionBinary returns the absolute path of the executable to deploy:
// PATH itself, or PATH built into a temporary directory that cleanup
// removes.
func functionBinary(ctx context.Context, path string) (bin string, cleanup func(), err error) {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.Mode().IsRegular():
		if fi.Mode()&0o111 == 0 {
			return "", nil, usagef("%s is not executable: want a Go package or an executable", path)
		}
		abs, err := filepath.Abs(path)
		return abs, func() {}, err
	case err == nil && fi.IsDir():
		// Build in the package's directory, so its own go.mod applies.
		return build(ctx, path, path, ".")
	case err == nil:
		return "", nil, usagef("%s is neither a Go package nor an executable", path)
	case !errors.Is(err, fs.ErrNotExist):
		return "", nil, err
	case filepath.IsAbs(path) || strings.HasPrefix(path, "."):
		return "", nil, usagef("%s: no such file or directory", path)
	default:
		return build(ctx, path, "", path) // an import path
	}
}

// build runs `go build` on pkg in dir.
func build(ctx context.Context, path, dir, pkg string) (string, func(), error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", nil, fmt.Errorf("building %s needs the go command in PATH (or deploy an executable)", path)
	}
	tmp, err := os.MkdirTemp("", "fnctl-deploy-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	// The daemon may run as another user; it must be able to copy the build.
	if err := os.Chmod(tmp, 0o755); err != nil {
		cleanup()
		return "", nil, err
	}
	bin := filepath.Join(tmp, "function")
	if err := goBuild(ctx, goTool, dir, pkg, bin); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build %s: %w", path, err)
	}
	// go build -o of a package that is not main writes an archive, not a
	// program.
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		cleanup()
		return "", nil, usagef("%s is not a main package: a function is a package main that calls fn.Main", path)
	}
	return bin, cleanup, nil
}

// goBuild builds pkg in dir into out with the given build tags; its error
// is the go command's output.
func goBuild(ctx context.Context, goTool, dir, pkg, out string, tags ...string) error {
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(ctx, goTool, append(args, pkg)...)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(buf.String()); msg != "" {
			return errors.New(msg)
		}
		return err
	}
	return nil
}

// notFn ends every error about an executable that is not a microfn
// function.
const notFn = "deploy an executable not built with fn with --plain --topic T"

// describe runs the binary with --describe and returns its manifest. An
// executable that is not a microfn function, however it shows it, is a
// usage error that says how to deploy it anyway.
func describe(ctx context.Context, path, bin string) (fnproto.Manifest, error) {
	dctx, cancel := context.WithTimeout(ctx, describeTimeout)
	defer cancel()
	cmd := exec.CommandContext(dctx, bin, "--describe")
	cmd.Env = append(os.Environ(), fnproto.EnvDescribe+"=1")
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return fnproto.Manifest{}, ctx.Err()
	case dctx.Err() != nil:
		return fnproto.Manifest{}, usagef("%s --describe did not answer within %v: %s", path, describeTimeout, notFn)
	case errors.As(err, &exit) && exit.ExitCode() == fnproto.ExitUsage && strings.HasPrefix(msg, "fn: "):
		// fn's own refusal, such as a binary without subscribers.
		return fnproto.Manifest{}, usageError{fmt.Errorf("%s: %s", path, strings.TrimPrefix(msg, "fn: "))}
	case errors.As(err, &exit):
		if msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return fnproto.Manifest{}, usagef("%s --describe: %w (%s)", path, err, notFn)
	case err != nil:
		return fnproto.Manifest{}, fmt.Errorf("%s --describe: %w", path, err)
	}
	var m fnproto.Manifest
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil || m.Protocol == 0 {
		return fnproto.Manifest{}, usagef("%s printed no microfn manifest on --describe: %s", path, notFn)
	}
	if m.Protocol != fnproto.ProtocolVersion {
		return fnproto.Manifest{}, usagef("%s speaks restarter protocol %d, this fnctl %d: rebuild it with this version of microfn", path, m.Protocol, fnproto.ProtocolVersion)
	}
	return m, nil
}

// chooseSubscriber picks the subscriber to deploy from a manifest.
func chooseSubscriber(path string, m fnproto.Manifest, name string) (fnproto.Subscriber, error) {
	names := make([]string, len(m.Subscribers))
	for i, s := range m.Subscribers {
		if name != "" && s.Name == name {
			return s, nil
		}
		names[i] = s.Name
	}
	switch {
	case len(m.Subscribers) == 0:
		return fnproto.Subscriber{}, usagef("%s declares no subscribers: call fn.Subscribe before fn.Main, or deploy it with --plain --topic T", path)
	case name != "":
		return fnproto.Subscriber{}, usagef("%s has no subscriber %q (it declares: %s)", path, name, strings.Join(names, ", "))
	case len(m.Subscribers) > 1:
		return fnproto.Subscriber{}, usagef("%s declares %d subscribers (%s): choose one with --subscriber", path, len(names), strings.Join(names, ", "))
	}
	return m.Subscribers[0], nil
}

// sizeUnits are the suffixes parseSize accepts; longer ones first, since
// every suffix ends in "B".
var sizeUnits = []struct {
	suffix string
	bytes  int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// parseSize reads a byte count such as 256MiB, 1GB or 1048576.
func parseSize(s string) (int64, error) {
	num, unit := s, int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, unit = n, u.bytes
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * unit, nil
}
