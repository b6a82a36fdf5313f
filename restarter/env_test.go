package restarter

import (
	"fmt"
	"testing"
)

func TestWithDefaultsKeepsWhatIsSet(t *testing.T) {
	got := withDefaults([]string{"A=1", "GOMAXPROCS=4"}, []string{"GOMAXPROCS=1", "B=2"})
	if fmt.Sprint(got) != "[A=1 GOMAXPROCS=4 B=2]" {
		t.Fatalf("got %v", got)
	}
}
