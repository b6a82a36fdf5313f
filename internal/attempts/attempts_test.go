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
	s := Encode(in, nil)
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
	for _, s := range []string{"", "x", "fn1;1:2", "fn1;a:1:1", "fn1;1:-1:0", "fn2;1:1:1", "fn1;;", "fn1;1:1:1:x", "fn1;1:1:1:r:r"} {
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
	s := Encode(es, nil)
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
		again := Decode(Encode(es, nil))
		if len(again) != min(len(es), MaxEntries) {
			t.Fatalf("re-decoded %d entries from %d", len(again), len(es))
		}
	})
}

func TestFinishedRanges(t *testing.T) {
	at := time.UnixMilli(1700000000000)
	s := Encode([]Entry{{Offset: 42, Failed: 2, Last: at}}, []Range{{48, 48}, {44, 46}})
	if s != "fn1;42:2:1700000000000;d:44-46;d:48-48" {
		t.Fatalf("Encode = %q", s)
	}
	if got := Decode(s); len(got) != 1 || got[0].Offset != 42 {
		t.Fatalf("Decode = %+v", got)
	}
	done := DecodeDone(s)
	for off, want := range map[int64]bool{42: false, 43: false, 44: true, 46: true, 47: false, 48: true} {
		if Covers(done, off) != want {
			t.Errorf("Covers(%d) = %v, want %v", off, !want, want)
		}
	}
	for _, bad := range []string{"fn1;d:5-3", "fn1;d:x-3", "fn1;d:3"} {
		if DecodeDone(bad) != nil {
			t.Errorf("DecodeDone(%q) is not empty", bad)
		}
	}
}

func TestEncodeStaysUnderKafkasLimit(t *testing.T) {
	var es []Entry
	var ds []Range
	for i := range 100 {
		es = append(es, Entry{Offset: 1e18 + int64(i), Failed: 99, Last: time.Now()})
		ds = append(ds, Range{From: 2e18 + int64(10*i), To: 2e18 + int64(10*i+5)})
	}
	if s := Encode(es, ds); len(s) > 4096 {
		t.Fatalf("metadata is %d bytes, over Kafka's default 4096", len(s))
	}
}

func TestRunningAttemptCountsAsFailedForTheNextReader(t *testing.T) {
	at := time.UnixMilli(1700000000000)
	s := Encode([]Entry{{Offset: 7, Failed: 1, Last: at, Running: true}, {Offset: 9, Failed: 2, Last: at}}, nil)
	if s != "fn1;7:1:1700000000000:r;9:2:1700000000000" {
		t.Fatalf("Encode = %q", s)
	}
	got := Decode(s)
	if len(got) != 2 || !got[0].Running || got[0].Failures() != 2 || got[1].Running || got[1].Failures() != 2 {
		t.Fatalf("Decode = %+v", got)
	}
}
