package kwire

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TestSASLPlain authenticates every connection (the seed's, the
// coordinator's, the leader's) with PLAIN; a wrong password, and no SASL
// at all against a SASL listener, are one line naming the broker.
func TestSASLPlain(t *testing.T) {
	cl := newKfake(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "admin", "s3cret"))
	ctx := testCtx(t)
	mech, err := NewMechanism("plain", "admin", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	c := clientOf(t, cl.ListenAddrs(), WithSASL(mech))
	if err := c.Produce(ctx, &Record{Topic: "t", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	m := join(t, ctx, c, "g", "t")
	r, err := m.Take(ctx)
	if err != nil || string(r.Value) != "v" {
		t.Fatalf("took %v, %v", r, err)
	}
	if err := m.Commit(ctx, r.Partition, r.Offset+1, ""); err != nil {
		t.Fatal(err)
	}

	wrong := clientOf(t, cl.ListenAddrs(), WithSASL(Plain("admin", "Xyzzy-pa55")))
	err = wrong.Produce(ctx, &Record{Topic: "t", Value: []byte("v")})
	// Kafka answers SASL_AUTHENTICATION_FAILED, kfake hangs up.
	if !strings.Contains(err.Error(), "SASL PLAIN authentication") || !strings.Contains(err.Error(), cl.ListenAddrs()[0]) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("wrong password: %v, want one line naming the broker and SASL PLAIN authentication", err)
	}
	if strings.Contains(err.Error(), "Xyzzy-pa55") {
		t.Fatalf("the error shows the password: %v", err)
	}
	t.Log(err)

	none := clientOf(t, cl.ListenAddrs())
	err = none.Produce(ctx, &Record{Topic: "t", Value: []byte("v")})
	if err == nil || !strings.Contains(err.Error(), cl.ListenAddrs()[0]) || !strings.Contains(err.Error(), "require SASL") || strings.Contains(err.Error(), "retried") {
		t.Fatalf("no SASL: %v, want one line asking whether the listener requires SASL, not retried", err)
	}
	t.Log(err)
}

// TestNewMechanism: SCRAM needs kwire/kscram linked, and says so.
func TestNewMechanism(t *testing.T) {
	_, err := NewMechanism("SCRAM-SHA-512", "u", "p")
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "kwire/kscram") {
		t.Errorf("SCRAM without kscram: %v", err)
	}
	if _, err := NewMechanism("GSSAPI", "u", "p"); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown mechanism: %v", err)
	}
	if _, err := NewMechanism("PLAIN", "", "p"); !errors.Is(err, ErrConfig) {
		t.Errorf("no user: %v", err)
	}
}
