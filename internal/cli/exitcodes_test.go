package cli

import (
	"os"
	"strings"
	"testing"
)

// Every command, given each kind of bad input, exits with the code of the
// one table (ExitUsage, ExitNotFound, ExitFailure) and says why in one
// line on stderr: no usage dump, no stack trace, nothing on stdout.
func TestExitCodes(t *testing.T) {
	clearEnv(t)
	d := startDaemon(t, "")
	srv := d.API
	nobody := closedAddr(t)
	// A deployment for the commands that need one, and one whose group a
	// plain executable named "shared" would take without --group.
	plain := script(t, "greeter", "cat >/dev/null\n")
	for _, args := range [][]string{
		{"deploy", plain, "--plain", "--topic", "names", "--server", srv},
		{"deploy", plain, "--plain", "--topic", "names", "--name", "a", "--group", "shared", "--server", srv},
	} {
		if _, errOut, code := fnctl(t, args...); code != ExitOK {
			t.Fatalf("fnctl %v: exit %d %s", args, code, errOut)
		}
	}
	shared := script(t, "shared", "cat >/dev/null\n")
	spaced := script(t, "my fn.sh", "cat >/dev/null\n")
	failing := script(t, "fails.sh", "echo 'no such flag' >&2\nexit 1\n")
	otherState := t.TempDir()

	cases := []struct {
		args []string
		env  map[string]string
		code int
		want string // the start of the line
		also string // and somewhere in it
	}{
		// fnctl itself
		{args: []string{"nope"}, code: ExitUsage, want: `unknown command "nope" for "fnctl"`},
		{args: []string{"--nope"}, code: ExitUsage, want: "unknown flag: --nope"},
		{args: []string{"help", "nope"}, code: ExitUsage, want: `no help for "nope": not a command`},
		{args: []string{"completion", "nosh"}, code: ExitUsage, want: `unknown command "nosh" for "fnctl completion"`},
		{args: []string{"completion", "bash", "extra"}, code: ExitUsage, want: `unknown command "extra" for "fnctl completion bash"`},

		{args: []string{"broker", "extra"}, code: ExitUsage, want: "want no arguments, got 1 argument(s)"},
		{args: []string{"broker", "--partitions", "0"}, code: ExitUsage, want: "--partitions must be at least 1, got 0"},
		{args: []string{"broker", "--listen", "nocolon"}, code: ExitUsage, want: `--listen "nocolon": want host:port`},

		{args: []string{"publish"}, code: ExitUsage, want: "want TOPIC and an optional VALUE, got 0 argument(s)"},
		{args: []string{"publish", "", "v"}, code: ExitUsage, want: "empty topic name"},
		{args: []string{"publish", "a b", "v"}, code: ExitUsage, want: `topic "a b": want 1-249 letters, digits, '.', '_' or '-'`},
		{args: []string{"publish", "t", "v", "--nope"}, code: ExitUsage, want: "unknown flag: --nope"},
		{args: []string{"publish", "t", "v", "--count", "0"}, code: ExitUsage, want: "--count must be at least 1, got 0"},
		{args: []string{"publish", "t", "v", "--brokers", "bad"}, code: ExitUsage, want: `invalid broker address "bad": want host:port`},
		{args: []string{"publish", "t", "v", "--brokers", nobody}, code: ExitFailure, want: "cannot reach Kafka at [" + nobody + "]"},

		{args: []string{"tail", ""}, code: ExitUsage, want: "empty topic name"},
		{args: []string{"tail", "a/b"}, code: ExitUsage, want: `topic "a/b": want 1-249 letters`},
		{args: []string{"tail", "t", "-o", "yaml"}, code: ExitUsage, want: `-o must be text or json, got "yaml"`},
		{args: []string{"tail", "t", "-n", "-1"}, code: ExitUsage, want: "-n must not be negative, got -1"},
		{args: []string{"tail", "t", "--idle", "-1s"}, code: ExitUsage, want: "--idle must not be negative, got -1s"},
		{args: []string{"tail", "t", "--brokers", nobody}, code: ExitFailure, want: "cannot reach Kafka at [" + nobody + "]"},
		{args: []string{"publish", "t", "v", "--sasl-user", "u"}, code: ExitUsage, want: "a SASL user or password without --sasl-mechanism"},
		{args: []string{"publish", "t", "v", "--tls-ca", "/nonexistent/ca.pem"}, code: ExitUsage, want: "TLS CA bundle: open /nonexistent/ca.pem"},
		{args: []string{"tail", "t", "--sasl-mechanism", "scram-sha-512", "--sasl-user", "u"}, code: ExitUsage, want: "SASL SCRAM-SHA-512 needs a password"},
		{args: []string{"publish", "t", "v"}, env: map[string]string{"FN_TLS": "perhaps"}, code: ExitUsage, want: `FN_TLS="perhaps": want 1 or 0`},
		{args: []string{"up", "--state", otherState, "--listen", "127.0.0.1:0", "--tls"}, code: ExitUsage, want: "TLS or SASL settings (TLS) need --brokers: the embedded broker is plaintext on loopback"},
		{args: []string{"tail", "no-such-topic", "--brokers", d.Brokers}, code: ExitNotFound, want: `topic "no-such-topic" does not exist`},

		{args: []string{"bench", "--pool", "0"}, code: ExitUsage, want: "--pool must be at least 1, got 0"},
		{args: []string{"bench", "a", "b"}, code: ExitUsage, want: "want an optional PATH, got 2 argument(s)"},

		{args: []string{"invoke"}, code: ExitUsage, want: "want PATH and an optional VALUE, got 0 argument(s)"},
		{args: []string{"invoke", "./f", "--attempt", "0"}, code: ExitUsage, want: "--attempt must be at least 1, got 0"},
		{args: []string{"invoke", "./no/such/fn", "v"}, code: ExitUsage, want: "./no/such/fn: no such file or directory"},

		{args: []string{"replay"}, code: ExitUsage, want: "want NAME, got 0 argument(s)"},
		{args: []string{"replay", "a b"}, code: ExitUsage, want: `name "a b": want 1-63 letters`},
		{args: []string{"replay", "greeter", "-n", "-1"}, code: ExitUsage, want: "-n must not be negative, got -1"},
		{args: []string{"replay", "nope", "--server", srv}, code: ExitNotFound, want: `no such deployment: "nope"`},
		{args: []string{"replay", "greeter", "--server", nobody}, code: ExitFailure, want: "no fnctl daemon at " + nobody + " (start one with `fnctl up`)"},

		{args: []string{"up", "extra"}, code: ExitUsage, want: "want no arguments, got 1 argument(s)"},
		{args: []string{"up", "--state", otherState, "--listen", "0.0.0.0:0"}, code: ExitUsage, want: "listening on 0.0.0.0:0 requires --token (or FN_TOKEN)"},
		{args: []string{"up", "--state", otherState, "--listen", "nocolon"}, code: ExitUsage, want: `API listen address "nocolon": want host:port`},
		{args: []string{"up", "--state", otherState, "--brokers", "bad"}, code: ExitUsage, want: `invalid broker address "bad"`},
		{args: []string{"up", "--state", d.StateDir, "--listen", "127.0.0.1:0"}, code: ExitFailure, want: "another fnctl daemon is using the state directory " + d.StateDir},
		{args: []string{"up", "--state", otherState, "--listen", "127.0.0.1:0", "--brokers", nobody}, code: ExitFailure,
			want: "start the restarter: cannot reach Kafka at [" + nobody + "]", also: "(no embedded broker: --brokers was given)"},
		{args: []string{"up", "--state", otherState, "--listen", "127.0.0.1:0"}, env: map[string]string{"FN_BROKERS": nobody}, code: ExitFailure,
			want: "start the restarter: cannot reach Kafka at [" + nobody + "]", also: "(no embedded broker: FN_BROKERS is set; unset it to run one)"},

		{args: []string{"deploy"}, code: ExitUsage, want: "want PATH (a Go package or an executable), got 0 argument(s)"},
		{args: []string{"deploy", "./fn", "--pool", "0"}, code: ExitUsage, want: "--pool must be at least 1, got 0"},
		{args: []string{"deploy", "./fn", "--order", "random"}, code: ExitUsage, want: `--order must be key, partition or none, got "random"`},
		{args: []string{"deploy", "./fn", "--env", "NOEQ"}, code: ExitUsage, want: `malformed --env "NOEQ": want K=V`},
		{args: []string{"deploy", "./fn", "--nope"}, code: ExitUsage, want: "unknown flag: --nope"},
		{args: []string{"deploy", "./no/such/fn"}, code: ExitUsage, want: "./no/such/fn: no such file or directory"},
		{args: []string{"deploy", plain, "--plain", "--topic", "t", "--name", ""}, code: ExitUsage, want: `--name: name "": want 1-63 letters`},
		{args: []string{"deploy", plain, "--plain", "--topic", "t", "--name", "../x"}, code: ExitUsage, want: `--name: name "../x": want 1-63 letters`},
		{args: []string{"deploy", plain, "--plain", "--topic", ""}, code: ExitUsage, want: "--topic: empty topic name"},
		{args: []string{"deploy", plain, "--plain", "--topic", "a b"}, code: ExitUsage, want: `--topic: topic "a b": want 1-249`},
		{args: []string{"deploy", plain, "--plain", "--topic", "t", "--group", ""}, code: ExitUsage, want: "--group: empty consumer group name"},
		{args: []string{"deploy", plain, "--plain", "--topic", "t", "--dlq", ""}, code: ExitUsage, want: "--dlq: empty topic name"},
		{args: []string{"deploy", "./fn", "--subscriber", ""}, code: ExitUsage, want: "--subscriber: empty subscriber name"},
		{args: []string{"deploy", spaced, "--plain", "--topic", "t", "--server", srv}, code: ExitUsage,
			want: `my fn.sh cannot name the deployment (name "my fn.sh": want 1-63 letters`, also: "choose a name with --name"},
		{args: []string{"deploy", "testdata/notmain", "--server", srv}, code: ExitUsage,
			want: "testdata/notmain is not a main package: a function is a package main that calls fn.Main"},
		{args: []string{"deploy", "/bin/ls", "--server", srv}, code: ExitUsage, want: "/bin/ls --describe: exit status 2: ",
			also: "(deploy an executable not built with fn with --plain --topic T)"},
		{args: []string{"deploy", "/bin/sleep", "--server", srv}, code: ExitUsage, want: "/bin/sleep --describe: exit status 1: ",
			also: "(deploy an executable not built with fn with --plain --topic T)"},
		{args: []string{"deploy", failing, "--server", srv}, code: ExitUsage, want: failing + " --describe: exit status 1: no such flag",
			also: "(deploy an executable not built with fn with --plain --topic T)"},
		{args: []string{"deploy", "testdata/nosubs", "--server", srv}, code: ExitUsage,
			want: "testdata/nosubs: this binary declares no subscribers: call fn.Subscribe before fn.Main"},
		{args: []string{"deploy", shared, "--plain", "--topic", "t", "--server", srv}, code: ExitUsage,
			want: `consumer group "shared" is already deployment "a"'s`, also: "pass --group shared"},
		{args: []string{"deploy", plain, "--plain", "--topic", "t", "--server", nobody}, code: ExitFailure, want: "no fnctl daemon at " + nobody},

		{args: []string{"ls", "extra"}, code: ExitUsage, want: "want no arguments, got 1 argument(s)"},
		{args: []string{"ls", "-o", "yaml"}, code: ExitUsage, want: `-o must be text or json, got "yaml"`},
		{args: []string{"ls", "--server", "http://"}, code: ExitUsage, want: `invalid daemon address "http://"`},
		{args: []string{"ls", "--server", nobody}, code: ExitFailure, want: "no fnctl daemon at " + nobody + " (start one with `fnctl up`)"},
		{args: []string{"ls"}, env: map[string]string{"FN_SERVER": nobody}, code: ExitFailure, want: "no fnctl daemon at " + nobody},

		{args: []string{"status", "-o", "yaml"}, code: ExitUsage, want: `-o must be text or json, got "yaml"`},
		{args: []string{"status", "--server", nobody}, code: ExitFailure, want: "no fnctl daemon at " + nobody},

		{args: []string{"rm"}, code: ExitUsage, want: "want NAME, got 0 argument(s)"},
		{args: []string{"rm", "a b"}, code: ExitUsage, want: `name "a b": want 1-63 letters`},
		{args: []string{"rm", "nope", "--server", srv}, code: ExitNotFound, want: `no such deployment: "nope"`},
		{args: []string{"rm", "greeter", "--server", nobody}, code: ExitFailure, want: "no fnctl daemon at " + nobody},

		{args: []string{"scale", "greeter"}, code: ExitUsage, want: "want --pool N"},
		{args: []string{"scale", "--pool", "2"}, code: ExitUsage, want: "want NAME, got 0 argument(s)"},
		{args: []string{"scale", "greeter", "--pool", "0"}, code: ExitUsage, want: "--pool must be at least 1, got 0"},
		{args: []string{"scale", "greeter", "--min-pool", "3", "--max-pool", "2"}, code: ExitUsage, want: "--min-pool must be from 0 to --max-pool (2), got 3"},
		{args: []string{"scale", "greeter", "--max-pool", "4", "--scale-down-after", "1s"}, code: ExitUsage, want: "--scale-down-after is set by fnctl deploy"},
		{args: []string{"scale", "a b", "--pool", "2"}, code: ExitUsage, want: `name "a b": want 1-63 letters`},
		{args: []string{"scale", "nope", "--pool", "2", "--server", srv}, code: ExitNotFound, want: `no such deployment: "nope"`},
		{args: []string{"scale", "greeter", "--pool", "2", "--server", nobody}, code: ExitFailure, want: "no fnctl daemon at " + nobody},

		{args: []string{"logs"}, code: ExitUsage, want: "want NAME, got 0 argument(s)"},
		{args: []string{"logs", "../greeter"}, code: ExitUsage, want: `name "../greeter": want 1-63 letters`},
		{args: []string{"logs", "greeter", "-n", "-1"}, code: ExitUsage, want: "-n must not be negative, got -1"},
		{args: []string{"logs", "greeter", "--state", d.StateDir, "--server", srv}, code: ExitUsage, want: "--state and --server exclude each other"},
		{args: []string{"logs", "nope", "--state", d.StateDir}, code: ExitNotFound, want: `no such deployment: "nope" in the state directory ` + d.StateDir},
		{args: []string{"logs", "nope"}, env: map[string]string{"FN_STATE": d.StateDir}, code: ExitNotFound, want: `no such deployment: "nope" in the state directory ` + d.StateDir},
		{args: []string{"logs", "nope", "--server", srv}, code: ExitNotFound, want: `no such deployment: "nope"`},
		{args: []string{"logs", "greeter", "--server", nobody}, code: ExitFailure,
			want: "no fnctl daemon at " + nobody + " (start one with `fnctl up`); with no daemon, read the log file with --state DIR"},
	}
	if _, err := os.Stat("/bin/ls"); err != nil {
		t.Fatalf("this test runs /bin/ls and /bin/sleep: %v", err)
	}
	for _, c := range cases {
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		out, errOut, code := fnctl(t, c.args...)
		for k := range c.env {
			t.Setenv(k, "")
		}
		line := strings.TrimSuffix(errOut, "\n")
		if code != c.code || !strings.HasPrefix(line, "fnctl: "+c.want) || !strings.Contains(line, c.also) ||
			strings.Contains(line, "\n") || !strings.HasSuffix(errOut, "\n") || out != "" {
			t.Errorf("fnctl %q: exit %d, stdout %q, stderr %q\nwant exit %d and one line starting %q", c.args, code, out, errOut, c.code, "fnctl: "+c.want)
		}
	}
}
