package kwire

import (
	"strconv"
	"strings"
)

// ipAddr is an IPv4 or IPv6 address. kwire parses addresses itself:
// net/netip's package initialisation interns its zero values with package
// unique, which costs more at process start than this parser.
type ipAddr struct {
	b    [16]byte // IPv4 in the last 4 bytes
	v4   bool
	zone string // IPv6 only
}

// ip4 makes an IPv4 address.
func ip4(a, b, c, d byte) ipAddr {
	return ipAddr{b: [16]byte{10: 0xff, 11: 0xff, 12: a, 13: b, 14: c, 15: d}, v4: true}
}

var ip6Loopback = ipAddr{b: [16]byte{15: 1}}

// parseIP parses a dotted IPv4 address or an IPv6 address (with "::", an
// embedded IPv4 tail and a "%zone"). An IPv4-mapped IPv6 address is
// IPv4.
func parseIP(s string) (ipAddr, bool) {
	if strings.IndexByte(s, ':') < 0 {
		var a ipAddr
		a.v4 = true
		a.b[10], a.b[11] = 0xff, 0xff
		return a, parse4(s, a.b[12:])
	}
	var a ipAddr
	if i := strings.IndexByte(s, '%'); i >= 0 {
		a.zone = s[i+1:]
		s = s[:i]
		if a.zone == "" {
			return a, false
		}
	}
	ellipsis := -1 // where "::" was, in 16-bit groups
	n := 0         // bytes filled
	if strings.HasPrefix(s, "::") {
		ellipsis = 0
		s = s[2:]
	}
	for s != "" {
		// An IPv4 tail fills the last 4 bytes.
		if strings.IndexByte(s, ':') < 0 && strings.IndexByte(s, '.') >= 0 {
			if n > 12 || !parse4(s, a.b[n:n+4]) {
				return a, false
			}
			n += 4
			s = ""
			break
		}
		end := strings.IndexByte(s, ':')
		if end < 0 {
			end = len(s)
		}
		if end == 0 || end > 4 || n >= 16 {
			return a, false
		}
		v, err := strconv.ParseUint(s[:end], 16, 16)
		if err != nil {
			return a, false
		}
		a.b[n], a.b[n+1] = byte(v>>8), byte(v)
		n += 2
		s = s[end:]
		if s == "" {
			break
		}
		s = s[1:] // the colon
		if s == "" {
			return a, false // a trailing single colon
		}
		if s[0] == ':' {
			if ellipsis >= 0 {
				return a, false // a second "::"
			}
			ellipsis = n
			s = s[1:]
		}
	}
	if ellipsis >= 0 {
		if n == 16 {
			return a, false
		}
		shift := 16 - n
		copy(a.b[ellipsis+shift:], a.b[ellipsis:n])
		clear(a.b[ellipsis : ellipsis+shift])
	} else if n != 16 {
		return a, false
	}
	if a.zone == "" && a.b == [16]byte{10: 0xff, 11: 0xff, 12: a.b[12], 13: a.b[13], 14: a.b[14], 15: a.b[15]} {
		a.v4 = true
	}
	return a, true
}

// parse4 parses dotted IPv4 into dst (4 bytes): four decimal numbers up
// to 255, without leading zeros.
func parse4(s string, dst []byte) bool {
	for i := range 4 {
		end := strings.IndexByte(s, '.')
		if i == 3 {
			end = len(s)
		}
		if end <= 0 || end > 3 || (end > 1 && s[0] == '0') {
			return false
		}
		v, err := strconv.ParseUint(s[:end], 10, 8)
		if err != nil {
			return false
		}
		dst[i] = byte(v)
		s = s[end:]
		if i < 3 {
			if s == "" {
				return false
			}
			s = s[1:]
		}
	}
	return s == ""
}
