package kscram

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/microfn/microfn/internal/kwire"
)

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
