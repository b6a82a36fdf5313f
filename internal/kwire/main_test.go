package kwire

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/microfn/microfn/internal/testenv"
)

func TestMain(m *testing.M) {
	before := goleak.IgnoreCurrent()
	code := m.Run()
	testenv.Cleanup()
	removeBinaries()
	// Members heartbeat, Take fetches from several leaders at once: none
	// of those goroutines may outlive a closed member or client.
	if err := goleak.Find(before); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
		code = 1
	}
	os.Exit(code)
}

// testClient returns a client of the test broker, closed with the test.
func testClient(t *testing.T, opts ...Opt) (*Client, *testenv.Env) {
	t.Helper()
	env := testenv.Broker(t)
	c, err := NewClient(append([]Opt{SeedBrokers(strings.Split(env.Brokers, ",")...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, env
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
