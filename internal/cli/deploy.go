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

	"github.com/microfn/microfn/fn"
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
	Pool       int
	Timeout    time.Duration
	Attempts   int
	Order      string
	Env        []string
	// Memory is the memory limit of one invocation in bytes; 0: none.
	Memory int64
	Plain  bool
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
which fnctl builds with the go command and -tags microfn_lean, or an
executable file, used as is. fnctl runs the binary with --describe to
read the subscribers it declares: the subscriber's topic, group,
timeout, attempts and dead-letter topic become the deployment's, and the
flags override them. A binary that declares several subscribers needs
--subscriber.

--plain deploys an executable that does not use microfn's fn package: it
gets the message value on stdin and the key and headers in FN_KEY and
FN_HEADER_<NAME>, exit code 0 acknowledges, and it needs --topic.

The daemon copies the binary, so rebuilding PATH changes nothing until
the next deploy; deploying a name again replaces that deployment. ARGS
after -- are passed to every function process.`,
		Example: `  fnctl deploy ./examples/greeter
  fnctl deploy ./examples/greeter --name greeter-eu --topic names-eu --pool 4
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
			if opts.Pool < 1 {
				return usagef("--pool must be at least 1, got %d", opts.Pool)
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
	f.IntVar(&opts.Pool, "pool", restarter.DefaultPool, "warm processes to keep")
	f.DurationVar(&opts.Timeout, "timeout", 0, "deadline of one invocation (default: the subscriber's, else 30s)")
	f.IntVar(&opts.Attempts, "attempts", 0, "attempts before dead-lettering (default: the subscriber's, else 3)")
	f.StringVar(&opts.Order, "order", string(restarter.OrderKey), "which messages may run at once: key, partition or none")
	f.StringVar(&opts.DeadLetter, "dlq", "", "dead-letter topic (default: the subscriber's, else TOPIC.dlq)")
	f.StringArrayVar(&opts.Env, "env", nil, "environment variable K=V of the function (repeatable)")
	f.StringVar(&memory, "memory", "", "memory limit of one invocation, like 256MiB (default: none)")
	f.BoolVar(&opts.Plain, "plain", false, "PATH is an executable not built with fn (needs --topic)")
	return cmd
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
	warnIfTopicMissing(ctx, opts.IO.Err, client, spec.Topic)
	st, err := client.Deploy(ctx, spec)
	if err != nil {
		return fromDaemon(err)
	}
	fmt.Fprintf(opts.IO.Err, "deployed %s\n", statusLine(st))
	return nil
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
	spec := restarter.Spec{Binary: bin, Args: opts.Args, Env: opts.Env, Plain: opts.Plain, Pool: opts.Pool,
		Order: restarter.Order(opts.Order), MemoryLimit: opts.Memory}
	if opts.Plain {
		spec.Name = strings.TrimSuffix(filepath.Base(opts.Path), filepath.Ext(opts.Path))
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
		if opts.Topic != "" && sub.DeadLetter == sub.Topic+fn.DeadLetterSuffix {
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

// build runs `go build -tags microfn_lean` on pkg in dir: the lean build
// leaves the Kafka client out, which halves a function process's start.
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
	if err := goBuild(ctx, goTool, dir, pkg, bin, "microfn_lean"); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build %s: %w", path, err)
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

// describe runs the binary with --describe and returns its manifest.
func describe(ctx context.Context, path, bin string) (fn.Manifest, error) {
	dctx, cancel := context.WithTimeout(ctx, describeTimeout)
	defer cancel()
	cmd := exec.CommandContext(dctx, bin, "--describe")
	cmd.Env = append(os.Environ(), fn.EnvDescribe+"=1")
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return fn.Manifest{}, ctx.Err()
	case dctx.Err() != nil:
		return fn.Manifest{}, fmt.Errorf("%s --describe did not answer within %v: deploy an executable not built with fn with --plain --topic T", path, describeTimeout)
	case errors.As(err, &exit) && exit.ExitCode() == fn.ExitUsage && msg != "":
		// fn's own refusal, such as a binary without subscribers.
		return fn.Manifest{}, usageError{fmt.Errorf("%s: %s", path, strings.TrimPrefix(msg, "fn: "))}
	case err != nil:
		if msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return fn.Manifest{}, fmt.Errorf("%s --describe: %w (deploy an executable not built with fn with --plain --topic T)", path, err)
	}
	var m fn.Manifest
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil || m.Protocol == 0 {
		return fn.Manifest{}, usagef("%s printed no microfn manifest on --describe: deploy an executable not built with fn with --plain --topic T", path)
	}
	if m.Protocol != fn.ProtocolVersion {
		return fn.Manifest{}, fmt.Errorf("%s speaks restarter protocol %d, this fnctl %d: rebuild it with this version of microfn", path, m.Protocol, fn.ProtocolVersion)
	}
	return m, nil
}

// chooseSubscriber picks the subscriber to deploy from a manifest.
func chooseSubscriber(path string, m fn.Manifest, name string) (fn.SubscriberManifest, error) {
	names := make([]string, len(m.Subscribers))
	for i, s := range m.Subscribers {
		if name != "" && s.Name == name {
			return s, nil
		}
		names[i] = s.Name
	}
	switch {
	case len(m.Subscribers) == 0:
		return fn.SubscriberManifest{}, usagef("%s declares no subscribers: call fn.Subscribe before fn.Main, or deploy it with --plain --topic T", path)
	case name != "":
		return fn.SubscriberManifest{}, usagef("%s has no subscriber %q (it declares: %s)", path, name, strings.Join(names, ", "))
	case len(m.Subscribers) > 1:
		return fn.SubscriberManifest{}, usagef("%s declares %d subscribers (%s): choose one with --subscriber", path, len(names), strings.Join(names, ", "))
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
