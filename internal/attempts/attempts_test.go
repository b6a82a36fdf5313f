package attempts

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	at := time.UnixMilli(1700000000123)
	in := []Entry{{Offset: 9, Failed: 1, Last: at}, {Offset: 3, Failed: 4, Last: at}}
	s := Encode(in)
	if s != "fn1;3:4:1700000000123;9:1:1700000000123" {
		t.Fatalf("Encode = %q", s)
	}
	got := Decode(s)
	want := []Entry{in[1], in[0]}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode = %+v, want %+v", got, want)
	}
	if e, ok := Find(got, 9); !ok || e.Failed != 1 {
		t.Fatalf("Find(9) = %+v, %v", e, ok)
	}
	if _, ok := Find(got, 10); ok {
		t.Fatal("Find(10) found an entry")
	}
}

func TestDecodeForeignOrDamaged(t *testing.T) {
	for _, s := range []string{"", "x", "fn1;1:2", "fn1;a:1:1", "fn1;1:-1:0", "fn2;1:1:1", "fn1;;"} {
		if got := Decode(s); got != nil {
			t.Errorf("Decode(%q) = %+v, want nil", s, got)
		}
	}
}

func TestEncodeBoundsSize(t *testing.T) {
	var es []Entry
	for i := range 500 {
		es = append(es, Entry{Offset: int64(1e15 + i), Failed: 99, Last: time.Now()})
	}
	s := Encode(es)
	if len(s) > 4096 {
		t.Fatalf("metadata is %d bytes, over Kafka's default 4096", len(s))
	}
	if n := strings.Count(s, ";"); n != MaxEntries {
		t.Fatalf("%d entries kept, want %d", n, MaxEntries)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"", "fn1", "fn1;1:2:3", "fn1;9223372036854775807:1:1", "fn1;1:1:1;2:2:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		es := Decode(s)
		if es == nil {
			return
		}
		again := Decode(Encode(es))
		if len(again) != min(len(es), MaxEntries) {
			t.Fatalf("re-decoded %d entries from %d", len(again), len(es))
		}
	})
}
