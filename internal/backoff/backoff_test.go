package backoff

import (
	"testing"
	"time"
)

func TestCeilingDoublesToTheCap(t *testing.T) {
	p := Policy{Min: 200 * time.Millisecond, Max: 30 * time.Second}
	for n, want := range map[int]time.Duration{-1: 0, 0: 0, 1: 200 * time.Millisecond, 2: 400 * time.Millisecond,
		3: 800 * time.Millisecond, 8: 25600 * time.Millisecond, 9: 30 * time.Second, 1000: 30 * time.Second} {
		if got := p.Ceiling(n); got != want {
			t.Errorf("Ceiling(%d) = %v, want %v", n, got, want)
		}
	}
	if got := (Policy{}).Wait(3); got != 0 {
		t.Errorf("the zero Policy waits %v, want 0", got)
	}
	if got := (Policy{Min: time.Second, Max: time.Millisecond}).Ceiling(5); got != time.Second {
		t.Errorf("a Max under Min caps at %v, want Min", got)
	}
}

func TestWaitIsJitteredBetweenHalfAndTheCeiling(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: 30 * time.Second}
	for n := 1; n <= 12; n++ {
		c := p.Ceiling(n)
		seen := map[time.Duration]bool{}
		for range 200 {
			w := p.Wait(n)
			if w < c/2 || w > c {
				t.Fatalf("Wait(%d) = %v, outside [%v, %v]", n, w, c/2, c)
			}
			seen[w] = true
		}
		if len(seen) < 10 {
			t.Errorf("Wait(%d) took only %d distinct values in 200 draws: no jitter", n, len(seen))
		}
	}
}
