package kscram

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/microfn/microfn/internal/kwire"
)

// TestRFC7677 replays the SCRAM-SHA-256 exchange of RFC 7677, section 3.
func TestRFC7677(t *testing.T) {
	s := &session{m: SHA256("user", "pencil").(*mechanism)}
	nonce = func() string { return "rOprNGfwEbeRWgbNEkqO" }
	defer func() { nonce = randomNonce }()
	first, done, err := s.Step(nil)
	if err != nil || done || string(first) != "n,,n=user,r=rOprNGfwEbeRWgbNEkqO" {
		t.Fatalf("client-first %q %v %v", first, done, err)
	}
	final, done, err := s.Step([]byte("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
	want := "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	if err != nil || done || string(final) != want {
		t.Fatalf("client-final %q %v %v, want %q", final, done, err, want)
	}
	msg, done, err := s.Step([]byte("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
	if err != nil || !done || msg != nil {
		t.Fatalf("server-final: %q %v %v", msg, done, err)
	}

	s = &session{m: SHA256("user", "pencil").(*mechanism)}
	s.Step(nil)
	s.Step([]byte("r=" + s.clientNonce + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
	if _, _, err := s.Step([]byte("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")); err == nil {
		t.Fatal("a server signature for another exchange was accepted")
	}
}

// TestScramAgainstKfake authenticates the one-shot path's connections
// with both SCRAM variants, registered by this package's import.
func TestScramAgainstKfake(t *testing.T) {
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.EnableSASL(), kfake.Superuser(mech, "alice", "al1ce-secret"))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			m, err := kwire.NewMechanism(mech, "alice", "al1ce-secret")
			if err != nil {
				t.Fatal(err)
			}
			c, err := kwire.NewClient(kwire.SeedBrokers(cl.ListenAddrs()...), kwire.WithSASL(m))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Produce(ctx, &kwire.Record{Topic: "t", Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
			mem, err := c.Join(ctx, "g", "t")
			if err != nil {
				t.Fatal(err)
			}
			defer mem.Close(ctx)
			r, err := mem.Take(ctx)
			if err != nil || string(r.Value) != "v" {
				t.Fatalf("took %v %v", r, err)
			}
			if err := mem.Commit(ctx, r.Partition, r.Offset+1, ""); err != nil {
				t.Fatal(err)
			}

			bad, _ := kwire.NewMechanism(mech, "alice", "Xyzzy-pa55")
			c2, _ := kwire.NewClient(kwire.SeedBrokers(cl.ListenAddrs()...), kwire.WithSASL(bad))
			defer c2.Close()
			err = c2.Produce(ctx, &kwire.Record{Topic: "t", Value: []byte("v")})
			if err == nil || !strings.Contains(err.Error(), mech+" authentication") || strings.Contains(err.Error(), "Xyzzy") {
				t.Fatalf("wrong password: %v", err)
			}
			t.Log(err)
		})
	}
}
