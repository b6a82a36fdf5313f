package kwire

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kversion"
)

var allKeys = []int16{keyProduce, keyFetch, keyListOffsets, keyMetadata, keyOffsetCommit, keyOffsetFetch,
	keyFindCoordinator, keyJoinGroup, keyHeartbeat, keyLeaveGroup, keySyncGroup, keySASLHandshake,
	keyApiVersions, keyCreateTopics, keySASLAuthenticate}

// TestNegotiatedVersions logs the version of each request kwire uses with
// the test broker, and the broker's range: the report of what was tested.
func TestNegotiatedVersions(t *testing.T) {
	c, env := testClient(t)
	bc, err := c.anyConn(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, k := range allKeys {
		v, err := bc.version(k, -1)
		r := bc.versions[k]
		if err != nil {
			fmt.Fprintf(&b, "\n  %-16s broker %d-%d: %v", apiName(k), r[0], r[1], err)
			continue
		}
		fmt.Fprintf(&b, "\n  %-16s v%-2d (broker %d-%d)", apiName(k), v, r[0], r[1])
	}
	t.Logf("versions with %s broker %s:%s", env.Kind, env.Brokers, b.String())
}

// TestOldBrokerVersions runs the one-shot path against kfake answering as
// older Kafka releases: every request is negotiated down, and a broker
// older than what kwire implements is refused with one clear line.
func TestOldBrokerVersions(t *testing.T) {
	for _, v := range []*kversion.Versions{kversion.V2_4_0(), kversion.V2_8_0(), kversion.V3_0_0(), kversion.V3_5_0(), kversion.V3_9_0(), kversion.V4_0_0()} {
		t.Run(v.VersionGuess(), func(t *testing.T) {
			cl := newKfake(t, kfake.MaxVersions(v))
			c := clientOf(t, cl.ListenAddrs())
			ctx := testCtx(t)
			if err := c.Produce(ctx, &Record{Topic: "t", Key: []byte("k"), Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
			m := join(t, ctx, c, "g", "t")
			r, err := m.Take(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Commit(ctx, r.Partition, r.Offset+1, "m"); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := c.FetchCommitted(ctx, "g", "t", r.Partition)
			if err != nil || got[r.Partition] != (Committed{r.Offset + 1, "m"}) {
				t.Fatalf("committed %v %v", got, err)
			}
		})
	}
	t.Run("too old", func(t *testing.T) {
		cl := newKfake(t, kfake.MaxVersions(kversion.V0_10_0()))
		c := clientOf(t, cl.ListenAddrs())
		err := c.Produce(testCtx(t), &Record{Topic: "t", Value: []byte("v")})
		var ve *VersionError
		if !errors.As(err, &ve) || !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("got %v, want a VersionError", err)
		}
		t.Log(err)
	})
}
