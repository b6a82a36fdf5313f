package restarter

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/microfn/microfn/internal/kafka"
)

func TestCommitterSendsOnlyMovedWatermarksAndRemembersSuccess(t *testing.T) {
	var sent []string
	fail := false
	c := newCommitter(time.Hour, func(gen generation, cs []kafka.Commit) error {
		for _, cm := range cs {
			sent = append(sent, fmt.Sprintf("g%d/%s/%d=%d", gen.id, gen.member, cm.Partition, cm.Offset))
		}
		if fail {
			return errors.New("coordinator moved")
		}
		return nil
	}, slog.New(slog.DiscardHandler))
	p0 := newPartState("t", 0, kafka.Commit{Offset: -1}, 10, func() int64 { return 0 })
	p1 := newPartState("t", 1, kafka.Commit{Offset: 5, Metadata: ""}, 5, func() int64 { return 0 })
	gen := generation{id: 3, member: "m"}

	p0.add(10)
	p0.add(11)
	p0.done(11) // 10 still pending: the watermark is 10, but 11 is recorded as finished
	c.commit(gen, p0, p1)
	if fmt.Sprint(sent) != "[g3/m/0=10]" {
		t.Fatalf("sent %v, want only partition 0 (partition 1 has not moved)", sent)
	}
	sent = nil
	c.commit(gen, p0, p1)
	if len(sent) != 0 {
		t.Fatalf("sent %v again though nothing moved", sent)
	}
	p0.done(10)
	fail = true
	c.commit(gen, p0)
	fail = false
	c.commit(gen, p0)
	if fmt.Sprint(sent) != "[g3/m/0=12 g3/m/0=12]" {
		t.Fatalf("sent %v, want the failed commit sent again", sent)
	}
}

func TestCommitterCommitsOneAtATime(t *testing.T) {
	var mu sync.Mutex
	inside, most := 0, 0
	c := newCommitter(time.Hour, func(generation, []kafka.Commit) error {
		mu.Lock()
		inside++
		most = max(most, inside)
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		inside--
		mu.Unlock()
		return nil
	}, slog.New(slog.DiscardHandler))
	var wg sync.WaitGroup
	for p := range int32(8) {
		ps := newPartState("t", p, kafka.Commit{Offset: -1}, 0, func() int64 { return 0 })
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := range int64(20) {
				ps.add(off)
				ps.done(off)
				c.commit(generation{}, ps)
			}
		}()
	}
	wg.Wait()
	if most != 1 {
		t.Fatalf("%d commits were sent at once, want 1", most)
	}
}

func TestCommitterLoopCommitsWhenKicked(t *testing.T) {
	sent := make(chan int64, 10)
	c := newCommitter(time.Hour, func(_ generation, cs []kafka.Commit) error {
		sent <- cs[0].Offset
		return nil
	}, slog.New(slog.DiscardHandler))
	ps := newPartState("t", 0, kafka.Commit{Offset: -1}, 0, func() int64 { return 0 })
	stop := make(chan struct{})
	defer close(stop)
	go c.run(stop, func() (generation, []*partState, bool) { return generation{}, []*partState{ps}, true })
	ps.add(0)
	ps.done(0)
	c.soon()
	select {
	case off := <-sent:
		if off != 1 {
			t.Fatalf("committed %d, want 1", off)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no commit within 5s of a kick (the timer is an hour)")
	}
}
