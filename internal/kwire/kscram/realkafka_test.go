package kscram

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/microfn/microfn/internal/kwire"
)

// TestSASLRealKafka authenticates against a Kafka SASL_PLAINTEXT
// listener named by the environment:
//
//	KWIRE_TEST_SASL_BROKERS=127.0.0.1:9094
//	KWIRE_TEST_SASL_USERS=PLAIN:alice:secret,SCRAM-SHA-512:bob:secret
//
// For each user it runs the one-shot path, then checks that a wrong
// password is refused with SASL_AUTHENTICATION_FAILED in one line.
func TestSASLRealKafka(t *testing.T) {
	brokers, users := os.Getenv("KWIRE_TEST_SASL_BROKERS"), os.Getenv("KWIRE_TEST_SASL_USERS")
	if brokers == "" || users == "" {
		t.Skip("set KWIRE_TEST_SASL_BROKERS and KWIRE_TEST_SASL_USERS to run against a Kafka SASL listener")
	}
	seeds, err := kwire.SeedList(brokers)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range strings.Split(users, ",") {
		mech, rest, _ := strings.Cut(u, ":")
		user, pass, _ := strings.Cut(rest, ":")
		t.Run(mech, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			m, err := kwire.NewMechanism(mech, user, pass)
			if err != nil {
				t.Fatal(err)
			}
			c, err := kwire.NewClient(kwire.SeedBrokers(seeds...), kwire.WithSASL(m))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			topic := fmt.Sprintf("sasl-%s-%d", strings.ToLower(mech), time.Now().UnixNano())
			if err := c.Produce(ctx, &kwire.Record{Topic: topic, Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
			mem, err := c.Join(ctx, "g-"+topic, topic)
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

			bad, _ := kwire.NewMechanism(mech, user, "Xyzzy-pa55")
			c2, _ := kwire.NewClient(kwire.SeedBrokers(seeds...), kwire.WithSASL(bad))
			defer c2.Close()
			err = c2.Produce(ctx, &kwire.Record{Topic: topic, Value: []byte("v")})
			if !errors.Is(err, kwire.SaslAuthenticationFailed) || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "Xyzzy") {
				t.Fatalf("wrong password: %v, want one line with SASL_AUTHENTICATION_FAILED", err)
			}
			t.Log(err)
		})
	}
	c, _ := kwire.NewClient(kwire.SeedBrokers(seeds...))
	defer c.Close()
	err = c.Produce(context.Background(), &kwire.Record{Topic: "t", Value: []byte("v")})
	if err == nil || !strings.Contains(err.Error(), "SASL") {
		t.Fatalf("no SASL against a SASL listener: %v", err)
	}
	t.Log(err)
}
