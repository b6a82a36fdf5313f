package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microfn/microfn/internal/daemon"
	"github.com/microfn/microfn/internal/kconn"
)

// clearEnv unsets the variables fnctl reads, so a test sees only what it
// sets itself.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range append([]string{"FN_BROKERS", "FN_SERVER", "FN_TOKEN", "FN_STATE", "XDG_STATE_HOME"}, kconn.Envs...) {
		t.Setenv(k, "")
	}
}

// closedAddr is a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// fnctl runs Main and returns its stdout, stderr and exit code.
func fnctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// testDaemon is `fnctl up` run in the test: the real daemon, engine and
// embedded broker, over a state directory of its own.
type testDaemon struct {
	API, Brokers, StateDir string
	stop                   func()
}

// startDaemon runs a daemon over state (a new directory when "") until
// stop or the end of the test.
func startDaemon(t *testing.T, state string) *testDaemon {
	t.Helper()
	if state == "" {
		state = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan daemon.Ready, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Config{StateDir: state, BrokerListen: "127.0.0.1:0", Listen: "127.0.0.1:0",
			OnReady: func(r daemon.Ready) { ready <- r }})
	}()
	var r daemon.Ready
	select {
	case r = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("daemon: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("the daemon was not ready within 60s")
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}
	t.Cleanup(stop)
	return &testDaemon{API: r.API, Brokers: r.Broker.Addrs[0], StateDir: state, stop: stop}
}

// script writes an executable shell script named name and returns its path.
func script(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
