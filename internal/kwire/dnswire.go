package kwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// The part of the DNS message format (RFC 1035) a stub resolver asking for
// A and AAAA records needs. kwire encodes and parses it itself:
// x/net/dns/dnsmessage builds name tables in its package initialisation,
// which costs more at process start than this code.

const (
	dnsTypeA    uint16 = 1
	dnsTypeAAAA uint16 = 28
	dnsTypeOPT  uint16 = 41
	dnsClassIN  uint16 = 1

	dnsFlagResponse  = 1 << 15
	dnsFlagTruncated = 1 << 9
	dnsFlagRecursion = 1 << 8

	dnsRCodeNXDomain = 3
)

var errDNSFormat = errors.New("malformed DNS message")

// appendDNSName appends a fully qualified name ("kafka1.example.") as
// labels.
func appendDNSName(dst []byte, fqdn string) ([]byte, error) {
	if len(fqdn) > 254 || !strings.HasSuffix(fqdn, ".") {
		return nil, fmt.Errorf("invalid DNS name %q", fqdn)
	}
	if fqdn == "." {
		return append(dst, 0), nil
	}
	for _, label := range strings.Split(strings.TrimSuffix(fqdn, "."), ".") {
		if len(label) == 0 || len(label) > 63 {
			return nil, fmt.Errorf("invalid DNS name %q", fqdn)
		}
		dst = append(dst, byte(len(label)))
		dst = append(dst, label...)
	}
	return append(dst, 0), nil
}

// dnsQuery is a query for one name and type, recursion desired, with an
// EDNS0 record announcing that answers up to ednsSize bytes fit in UDP.
func dnsQuery(id uint16, fqdn string, qtype uint16) ([]byte, error) {
	msg := make([]byte, 12, 64)
	binary.BigEndian.PutUint16(msg[0:], id)
	binary.BigEndian.PutUint16(msg[2:], dnsFlagRecursion)
	binary.BigEndian.PutUint16(msg[4:], 1)  // questions
	binary.BigEndian.PutUint16(msg[10:], 1) // additional: OPT
	msg, err := appendDNSName(msg, fqdn)
	if err != nil {
		return nil, err
	}
	msg = binary.BigEndian.AppendUint16(msg, qtype)
	msg = binary.BigEndian.AppendUint16(msg, dnsClassIN)
	msg = append(msg, 0) // OPT: the root name
	msg = binary.BigEndian.AppendUint16(msg, dnsTypeOPT)
	msg = binary.BigEndian.AppendUint16(msg, ednsSize) // class: UDP payload size
	msg = binary.BigEndian.AppendUint32(msg, 0)        // TTL: extended rcode, version, flags
	msg = binary.BigEndian.AppendUint16(msg, 0)        // no options
	return msg, nil
}

// dnsAnswer is what kwire reads of a response.
type dnsAnswer struct {
	id        uint16
	response  bool
	truncated bool
	rcode     int
	qname     string // the question, lower case, fully qualified
	qtype     uint16
	addrs     []ipAddr // A or AAAA records of the answer section
}

// parseDNS parses a DNS response: header, the question, the answer
// section's A and AAAA records (others are skipped).
func parseDNS(msg []byte) (dnsAnswer, error) {
	var a dnsAnswer
	if len(msg) < 12 {
		return a, errDNSFormat
	}
	a.id = binary.BigEndian.Uint16(msg)
	flags := binary.BigEndian.Uint16(msg[2:])
	a.response = flags&dnsFlagResponse != 0
	a.truncated = flags&dnsFlagTruncated != 0
	a.rcode = int(flags & 0xf)
	qd, an := binary.BigEndian.Uint16(msg[4:]), binary.BigEndian.Uint16(msg[6:])
	off := 12
	for i := range qd {
		name, next, err := readDNSName(msg, off)
		if err != nil {
			return a, err
		}
		if next+4 > len(msg) {
			return a, errDNSFormat
		}
		if i == 0 {
			a.qname, a.qtype = name, binary.BigEndian.Uint16(msg[next:])
		}
		off = next + 4
	}
	for range an {
		_, next, err := readDNSName(msg, off)
		if err != nil {
			return a, err
		}
		if next+10 > len(msg) {
			return a, errDNSFormat
		}
		typ, class := binary.BigEndian.Uint16(msg[next:]), binary.BigEndian.Uint16(msg[next+2:])
		rdlen := int(binary.BigEndian.Uint16(msg[next+8:]))
		rdata := next + 10
		if rdata+rdlen > len(msg) {
			return a, errDNSFormat
		}
		switch {
		case class != dnsClassIN:
		case typ == dnsTypeA && rdlen == 4:
			d := msg[rdata:]
			a.addrs = append(a.addrs, ip4(d[0], d[1], d[2], d[3]))
		case typ == dnsTypeAAAA && rdlen == 16:
			var ip ipAddr
			copy(ip.b[:], msg[rdata:rdata+16])
			a.addrs = append(a.addrs, ip)
		}
		off = rdata + rdlen
	}
	return a, nil
}

// readDNSName reads the name at off, following compression pointers, and
// returns it lower case and fully qualified with the offset after it.
func readDNSName(msg []byte, off int) (string, int, error) {
	var b strings.Builder
	end := -1 // where the name ends in place, once a pointer was followed
	for hops := 0; ; {
		if off >= len(msg) {
			return "", 0, errDNSFormat
		}
		l := int(msg[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			if b.Len() == 0 {
				b.WriteByte('.')
			}
			return strings.ToLower(b.String()), end, nil
		case l&0xc0 == 0xc0:
			if off+1 >= len(msg) {
				return "", 0, errDNSFormat
			}
			if end < 0 {
				end = off + 2
			}
			if hops++; hops > 16 {
				return "", 0, errDNSFormat
			}
			off = int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
		case l&0xc0 != 0:
			return "", 0, errDNSFormat
		default:
			if off+1+l > len(msg) || b.Len()+l+1 > 255 {
				return "", 0, errDNSFormat
			}
			b.Write(msg[off+1 : off+1+l])
			b.WriteByte('.')
			off += 1 + l
		}
	}
}
