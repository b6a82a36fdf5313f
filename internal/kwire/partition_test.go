package kwire

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/IBM/sarama"
)

// TestHashPartitionMatchesSarama: kwire routes every key to the partition
// sarama's NewHashPartitioner (what the rest of microfn produces with)
// picks, for many keys and partition counts.
func TestHashPartitionMatchesSarama(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	keys := [][]byte{{}, {0}, {0xff}, []byte("order-1"), []byte("ü")}
	for range 5000 {
		k := make([]byte, r.IntN(40))
		for i := range k {
			k[i] = byte(r.Uint32())
		}
		keys = append(keys, k)
	}
	for i := range 1000 {
		keys = append(keys, fmt.Appendf(nil, "user-%d", i))
	}
	for _, n := range []int32{1, 2, 3, 4, 5, 7, 8, 12, 16, 31, 32, 50, 64, 100, 128, 1000} {
		p := sarama.NewHashPartitioner("t")
		for _, k := range keys {
			want, err := p.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(k)}, n)
			if err != nil {
				t.Fatal(err)
			}
			if got := HashPartition(k, n); got != want {
				t.Fatalf("key %x, %d partitions: kwire %d, sarama %d", k, n, got, want)
			}
		}
	}
}

// TestRangeAssignMatchesSarama: a kwire leader assigns as a sarama leader
// would, so a group mixing the two moves no partition needlessly.
func TestRangeAssignMatchesSarama(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 300 {
		nMembers := 1 + r.IntN(7)
		topics := map[string]int32{"a": int32(r.IntN(20)), "b": int32(1 + r.IntN(5))}
		subs := make(map[string][]string)
		saramaMembers := make(map[string]sarama.ConsumerGroupMemberMetadata)
		saramaTopics := make(map[string][]int32)
		for t, n := range topics {
			for p := range n {
				saramaTopics[t] = append(saramaTopics[t], p)
			}
		}
		for m := range nMembers {
			id := fmt.Sprintf("member-%x", r.Uint32())
			ts := []string{"a"}
			if m%2 == 1 || trial%3 == 0 {
				ts = append(ts, "b")
			}
			subs[id] = ts
			saramaMembers[id] = sarama.ConsumerGroupMemberMetadata{Topics: ts}
		}
		plan, err := sarama.NewBalanceStrategyRange().Plan(saramaMembers, saramaTopics)
		if err != nil {
			t.Fatal(err)
		}
		got := RangeAssign(subs, topics)
		want := map[string]map[string][]int32{}
		for m, byTopic := range plan {
			for topic, ps := range byTopic {
				if len(ps) == 0 {
					continue
				}
				if want[m] == nil {
					want[m] = map[string][]int32{}
				}
				want[m][topic] = ps
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("trial %d, subscriptions %v, partitions %v:\nkwire  %v\nsarama %v", trial, subs, topics, got, want)
		}
	}
}
