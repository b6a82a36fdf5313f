package fn

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/microfn/microfn/internal/pipe"
)

// Exit codes of a function binary run by Main.
const (
	// ExitOK: the message was handled and committed: acknowledged, or
	// dead-lettered. Also the exit code of --describe.
	ExitOK = 0
	// ExitRetry: the attempt failed; the offset was not advanced and the
	// attempt was recorded, so the next run gets the message again.
	ExitRetry = 1
	// ExitUsage: bad flags, environment or subscriber declarations.
	ExitUsage = 2
	// ExitBroker: the broker was unreachable or refused an operation
	// (commit, dead-letter or event publish); nothing was committed, so
	// the message, if one was taken, is delivered again.
	ExitBroker = 3
	// ExitInterrupted: a signal stopped the binary before it took a
	// message; nothing was consumed.
	ExitInterrupted = 4
)

// Environment variables Main reads.
const (
	EnvDescribe   = "FN_DESCRIBE"   // "1": print the manifest and exit
	EnvSubscriber = "FN_SUBSCRIBER" // which subscriber to run, when there are several

	// Overrides of the chosen subscriber's declared options, as `fnctl
	// deploy` flags set them; handy to run a binary on another topic.
	EnvTopic       = "FN_TOPIC"
	EnvGroup       = "FN_GROUP"
	EnvDeadLetter  = "FN_DEAD_LETTER"
	EnvMaxAttempts = "FN_MAX_ATTEMPTS"
	EnvTimeout     = "FN_TIMEOUT" // a Go duration, e.g. 5s
)

// withEnv returns a copy of f with the FN_* overrides applied.
func (f *Func) withEnv(getenv func(string) string) (*Func, error) {
	g := *f
	if v := getenv(EnvTopic); v != "" {
		if g.spec.deadLetter == f.topic+DeadLetterSuffix {
			g.spec.deadLetter = v + DeadLetterSuffix
		}
		g.topic = v
	}
	var opts []Option
	if v := getenv(EnvGroup); v != "" {
		opts = append(opts, Group(v))
	}
	if v := getenv(EnvDeadLetter); v != "" {
		opts = append(opts, DeadLetter(v))
	}
	if v := getenv(EnvMaxAttempts); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q is not a number", EnvMaxAttempts, v)
		}
		opts = append(opts, MaxAttempts(n))
	}
	if v := getenv(EnvTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q is not a duration (like 5s)", EnvTimeout, v)
		}
		opts = append(opts, Timeout(d))
	}
	for _, o := range opts {
		o(&g.spec)
	}
	if g.spec.err != nil {
		return nil, fmt.Errorf("subscriber %q: %w", g.name, g.spec.err)
	}
	return &g, nil
}

// Manifest describes a function binary's subscribers. --describe prints it
// as JSON.
type Manifest struct {
	// Protocol is the restarter protocol version the binary speaks.
	Protocol    int                  `json:"protocol"`
	Subscribers []SubscriberManifest `json:"subscribers"`
}

// SubscriberManifest describes one subscriber.
type SubscriberManifest struct {
	Name        string `json:"name"`
	Topic       string `json:"topic"`
	Group       string `json:"group"`
	Codec       string `json:"codec"`
	Timeout     string `json:"timeout"`
	MaxAttempts int    `json:"max_attempts"`
	DeadLetter  string `json:"dead_letter"`
}

// ProtocolVersion is the version of the restarter protocol in manifests.
const ProtocolVersion = 1

// Describe returns the manifest of the given subscribers.
func Describe(funcs []*Func) Manifest {
	m := Manifest{Protocol: ProtocolVersion, Subscribers: []SubscriberManifest{}}
	for _, f := range funcs {
		m.Subscribers = append(m.Subscribers, SubscriberManifest{
			Name: f.name, Topic: f.topic, Group: f.spec.group, Codec: f.CodecName(),
			Timeout: f.spec.timeout.String(), MaxAttempts: f.spec.maxAttempts, DeadLetter: f.spec.deadLetter,
		})
	}
	return m
}

// runStandalone is the standalone one-shot mode; lean builds replace it
// with a refusal.
var runStandalone func(ctx context.Context, f *Func, brokers string, stderr io.Writer) int

// Main runs the binary's declared subscribers and exits; see the package
// documentation for the ways it runs and the Exit constants for its exit
// codes. Flags: --describe, --subscriber NAME, --brokers HOST:PORT,...
func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fn", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	describe := fs.Bool("describe", os.Getenv(EnvDescribe) == "1", "print the JSON manifest and exit")
	name := fs.String("subscriber", os.Getenv(EnvSubscriber), "subscriber to run")
	brokers := fs.String("brokers", "", "Kafka brokers host:port,... (default $FN_BROKERS or 127.0.0.1:9092)")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "fn: %v (flags: --describe, --subscriber NAME, --brokers HOST:PORT,...)\n", err)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fn: unexpected argument %q (flags: --describe, --subscriber NAME, --brokers HOST:PORT,...)\n", fs.Arg(0))
		return ExitUsage
	}
	funcs := Funcs()
	if err := declarationErrors(funcs); err != nil {
		fmt.Fprintf(stderr, "fn: %v\n", err)
		return ExitUsage
	}
	if *describe {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(Describe(funcs)); err != nil {
			fmt.Fprintf(stderr, "fn: write manifest: %v\n", err)
			return ExitUsage
		}
		return ExitOK
	}
	f, err := choose(funcs, *name)
	if err == nil {
		f, err = f.withEnv(os.Getenv)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fn: %v\n", err)
		return ExitUsage
	}
	if spec := os.Getenv(pipe.EnvPipe); spec != "" {
		return runChild(f, spec, stderr)
	}
	return runStandalone(ctx, f, *brokers, stderr)
}

func declarationErrors(funcs []*Func) error {
	if len(funcs) == 0 {
		return errors.New("this binary declares no subscribers: call fn.Subscribe before fn.Main")
	}
	var errs []string
	for _, f := range funcs {
		if err := f.Err(); err != nil {
			errs = append(errs, strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func choose(funcs []*Func, name string) (*Func, error) {
	names := make([]string, len(funcs))
	for i, f := range funcs {
		if f.name == name {
			return f, nil
		}
		names[i] = f.name
	}
	if name != "" {
		return nil, fmt.Errorf("unknown subscriber %q (this binary declares: %s)", name, strings.Join(names, ", "))
	}
	if len(funcs) > 1 {
		return nil, fmt.Errorf("this binary declares %d subscribers (%s): choose one with %s or --subscriber", len(funcs), strings.Join(names, ", "), EnvSubscriber)
	}
	return funcs[0], nil
}
