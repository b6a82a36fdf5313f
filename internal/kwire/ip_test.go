package kwire

import (
	"net/netip"
	"testing"
)

var ipCases = []string{
	"127.0.0.1", "0.0.0.0", "255.255.255.255", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "",
	"::", "::1", "1::", "1::2", "fe80::1%eth0", "fe80::1%2", "fe80::1%", "::ffff:10.0.0.1", "2001:db8::ffff:1.2.3.4",
	"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6::8",
	":::", "1:::2", "1::2::3", ":1", "1:", "12345::", "g::1", "::1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
	"[::1]", "localhost",
}

// TestParseIP agrees with net/netip (an IPv4-mapped IPv6 address counts
// as IPv4, as kwire dials it).
func TestParseIP(t *testing.T) {
	for _, s := range ipCases {
		checkIP(t, s)
	}
}

func FuzzParseIP(f *testing.F) {
	for _, s := range ipCases {
		f.Add(s)
	}
	f.Fuzz(checkIP)
}

func checkIP(t *testing.T, s string) {
	got, ok := parseIP(s)
	want, err := netip.ParseAddr(s)
	if ok != (err == nil) {
		t.Fatalf("parseIP(%q) ok %v, netip err %v", s, ok, err)
	}
	if !ok {
		return
	}
	if got.b != want.As16() || got.zone != want.Zone() || got.v4 != want.Unmap().Is4() {
		t.Fatalf("parseIP(%q) = %x %q v4 %v, netip %x %q", s, got.b, got.zone, got.v4, want.As16(), want.Zone())
	}
}
