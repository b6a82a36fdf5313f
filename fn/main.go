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

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/fnproto"
	"github.com/microfn/microfn/internal/kconn"
	"github.com/microfn/microfn/internal/pipe"
)

// Main runs the binary's declared subscribers and exits. How it runs
// depends on its environment (see the package documentation):
//
//   - with --describe (or FN_DESCRIBE=1) it prints the JSON manifest of
//     its subscribers and exits;
//   - under the restarter, it takes one message from the restarter,
//     reports the outcome and exits;
//   - otherwise it runs standalone: it joins the subscriber's consumer
//     group on the Kafka in --brokers or FN_BROKERS (default
//     127.0.0.1:9092), takes one message, handles it, commits and exits.
//
// With several subscribers, --subscriber NAME (or FN_SUBSCRIBER) chooses
// one. FN_TOPIC, FN_GROUP, FN_DEAD_LETTER, FN_MAX_ATTEMPTS and FN_TIMEOUT
// override what the code declares. A secured Kafka's settings come from
// FN_TLS_CA, FN_SASL_MECHANISM and the other FN_TLS_* and FN_SASL_*
// variables, or the same flags (--tls-ca, --sasl-mechanism, ...); TLS and
// SCRAM need the binary to import package fn/secure. Standalone, the exit code says what
// happened: 0 handled and committed (acknowledged or dead-lettered), 1 the
// attempt failed and was recorded (the next run retries it), 2 bad flags,
// environment or declarations, 3 the broker was unreachable or refused an
// operation (nothing committed), 4 stopped by a signal before a message
// arrived.
func Main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = "flags: --describe, --subscriber NAME, --brokers HOST:PORT,..., --tls, --tls-ca FILE, --tls-cert FILE, --tls-key FILE, --tls-server-name NAME, --tls-insecure-skip-verify, --sasl-mechanism MECH, --sasl-user USER, --sasl-password-file FILE"

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fn", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	describe := fs.Bool("describe", getenv(fnproto.EnvDescribe) == "1", "print the JSON manifest and exit")
	name := fs.String("subscriber", getenv(fnproto.EnvSubscriber), "subscriber to run")
	brokers := fs.String("brokers", getenv(fnproto.EnvBrokers), "Kafka brokers host:port,...")
	var conn kconn.Settings
	fs.BoolVar(&conn.TLS, "tls", false, "TLS")
	fs.StringVar(&conn.CAFile, "tls-ca", "", "CA bundle")
	fs.StringVar(&conn.CertFile, "tls-cert", "", "client certificate")
	fs.StringVar(&conn.KeyFile, "tls-key", "", "client key")
	fs.StringVar(&conn.ServerName, "tls-server-name", "", "server name")
	fs.BoolVar(&conn.InsecureSkipVerify, "tls-insecure-skip-verify", false, "accept any certificate")
	fs.StringVar(&conn.SASLMechanism, "sasl-mechanism", "", "SASL mechanism")
	fs.StringVar(&conn.SASLUser, "sasl-user", "", "SASL user")
	fs.StringVar(&conn.SASLPasswordFile, "sasl-password-file", "", "SASL password file")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "fn: %v (%s)\n", err, usage)
		return fnproto.ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fn: unexpected argument %q (%s)\n", fs.Arg(0), usage)
		return fnproto.ExitUsage
	}
	funcs := declared()
	if err := declarationErrors(funcs); err != nil {
		fmt.Fprintf(stderr, "fn: %v\n", err)
		return fnproto.ExitUsage
	}
	if *describe {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(manifest(funcs)); err != nil {
			fmt.Fprintf(stderr, "fn: write manifest: %v\n", err)
			return fnproto.ExitUsage
		}
		return fnproto.ExitOK
	}
	f, err := choose(funcs, *name)
	if err == nil {
		f, err = f.withEnv(getenv)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fn: %v\n", err)
		return fnproto.ExitUsage
	}
	if spec := getenv(pipe.EnvPipe); spec != "" {
		// The restarter ends a process with signals to its group: no
		// handlers to install, which also keeps the start cheap.
		return runChild(f, spec, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return standalone(ctx, f, *brokers, conn, getenv, stderr)
}

// withEnv returns a copy of f with the FN_* overrides applied.
func (f *Func) withEnv(getenv func(string) string) (*Func, error) {
	g := *f
	if v := getenv(fnproto.EnvTopic); v != "" {
		if g.spec.deadLetter == f.topic+delivery.DeadLetterSuffix {
			g.spec.deadLetter = v + delivery.DeadLetterSuffix
		}
		g.topic = v
	}
	var opts []Option
	if v := getenv(fnproto.EnvGroup); v != "" {
		opts = append(opts, Group(v))
	}
	if v := getenv(fnproto.EnvDeadLetter); v != "" {
		opts = append(opts, DeadLetter(v))
	}
	if v := getenv(fnproto.EnvMaxAttempts); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q is not a number", fnproto.EnvMaxAttempts, v)
		}
		opts = append(opts, MaxAttempts(n))
	}
	if v := getenv(fnproto.EnvTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q is not a duration (like 5s)", fnproto.EnvTimeout, v)
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

// manifest describes the given subscribers.
func manifest(funcs []*Func) fnproto.Manifest {
	m := fnproto.Manifest{Protocol: fnproto.ProtocolVersion, Subscribers: []fnproto.Subscriber{}}
	for _, f := range funcs {
		m.Subscribers = append(m.Subscribers, fnproto.Subscriber{
			Name: f.name, Topic: f.topic, Group: f.spec.group, Codec: f.payloadCodec().Name(),
			Timeout: f.spec.timeout.String(), MaxAttempts: f.spec.maxAttempts, DeadLetter: f.spec.deadLetter,
		})
	}
	return m
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
		return nil, fmt.Errorf("this binary declares %d subscribers (%s): choose one with %s or --subscriber", len(funcs), strings.Join(names, ", "), fnproto.EnvSubscriber)
	}
	return funcs[0], nil
}
