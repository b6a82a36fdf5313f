package kwire

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// TestDNSQueryFormat: x/net's DNS parser reads kwire's queries.
func TestDNSQueryFormat(t *testing.T) {
	q, err := dnsQuery(0x1234, "Kafka-1.example.com.", dnsTypeAAAA)
	if err != nil {
		t.Fatal(err)
	}
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		t.Fatal(err)
	}
	if h.ID != 0x1234 || h.Response || !h.RecursionDesired {
		t.Fatalf("header %+v", h)
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 || qs[0].Name.String() != "Kafka-1.example.com." || qs[0].Type != dnsmessage.TypeAAAA || qs[0].Class != dnsmessage.ClassINET {
		t.Fatalf("questions %v err %v", qs, err)
	}
	p.SkipAllAnswers()
	p.SkipAllAuthorities()
	rh, err := p.AdditionalHeader()
	if err != nil || rh.Type != dnsmessage.TypeOPT || rh.Class != ednsSize {
		t.Fatalf("EDNS0 record %+v err %v", rh, err)
	}
	for _, bad := range []string{"no-dot", strings.Repeat("a", 64) + ".", "a..b.", strings.Repeat("abcdefghi.", 26)} {
		if _, err := dnsQuery(1, bad, dnsTypeA); err == nil {
			t.Errorf("dnsQuery(%q) accepted", bad)
		}
	}
}

type dnsRecord struct {
	typ   dnsmessage.Type
	cname string
	ip    string
}

// buildAnswer answers a query with x/net's builder (which compresses
// names), the records for its question, and rcode.
func buildAnswer(t testing.TB, query []byte, rcode dnsmessage.RCode, truncated bool, recs []dnsRecord) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		t.Fatal(err)
	}
	q, err := p.Question()
	if err != nil {
		t.Fatal(err)
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: true, RCode: rcode, Truncated: truncated})
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	name := q.Name
	for _, r := range recs {
		hdr := dnsmessage.ResourceHeader{Name: name, Class: dnsmessage.ClassINET, TTL: 60}
		switch {
		case r.cname != "":
			target := dnsmessage.MustNewName(r.cname)
			b.CNAMEResource(hdr, dnsmessage.CNAMEResource{CNAME: target})
			name = target
		case r.typ == q.Type && q.Type == dnsmessage.TypeA:
			b.AResource(hdr, dnsmessage.AResource{A: [4]byte(net.ParseIP(r.ip).To4())})
		case r.typ == q.Type && q.Type == dnsmessage.TypeAAAA:
			b.AAAAResource(hdr, dnsmessage.AAAAResource{AAAA: [16]byte(net.ParseIP(r.ip).To16())})
		}
	}
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestParseDNS(t *testing.T) {
	q, _ := dnsQuery(7, "kafka.example.", dnsTypeA)
	msg := buildAnswer(t, q, dnsmessage.RCodeSuccess, false, []dnsRecord{
		{cname: "broker.example."}, {typ: dnsmessage.TypeA, ip: "10.0.0.1"}, {typ: dnsmessage.TypeA, ip: "10.0.0.2"},
	})
	a, err := parseDNS(msg)
	if err != nil {
		t.Fatal(err)
	}
	if a.id != 7 || !a.response || a.qname != "kafka.example." || a.qtype != dnsTypeA || len(a.addrs) != 2 || a.addrs[1] != ip4(10, 0, 0, 2) {
		t.Fatalf("parsed %+v", a)
	}
}

// FuzzParseDNS: the parser never panics on any input, and reads what
// x/net builds.
func FuzzParseDNS(f *testing.F) {
	q, _ := dnsQuery(7, "kafka.example.", dnsTypeA)
	f.Add(q)
	f.Add(buildAnswer(f, q, dnsmessage.RCodeSuccess, false, []dnsRecord{{cname: "b.example."}, {typ: dnsmessage.TypeA, ip: "10.0.0.1"}}))
	f.Add([]byte{0, 1, 0x80, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 12}) // a name pointing at itself
	f.Fuzz(func(t *testing.T, msg []byte) {
		a, err := parseDNS(msg)
		if err == nil && len(a.qname) > 256 {
			t.Fatalf("name of %d bytes", len(a.qname))
		}
	})
}

// fakeDNS is a DNS server on 127.0.0.1, over UDP and TCP on one port.
type fakeDNS struct {
	addr dnsServer
	mu   sync.Mutex
	// answers by lower-case question name; a name missing is NXDOMAIN.
	answers   map[string][]dnsRecord
	rcode     dnsmessage.RCode
	truncate  bool // over UDP, answer truncated and empty
	silent    bool // never answer
	questions []string
}

func startFakeDNS(t *testing.T, answers map[string][]dnsRecord) *fakeDNS {
	t.Helper()
	d := &fakeDNS{answers: answers}
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if try == 10 {
			t.Fatalf("no port free for both UDP and TCP: %v", err)
		}
	}
	t.Cleanup(func() { pc.Close(); ln.Close() })
	port := uint16(pc.LocalAddr().(*net.UDPAddr).Port)
	d.addr = dnsServer{ip4(127, 0, 0, 1), port, pc.LocalAddr().String()}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := d.answer(t, buf[:n], true); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var size [2]byte
				if _, err := io.ReadFull(c, size[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(size[:]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				resp := d.answer(t, q, false)
				c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(resp))), resp...))
			}()
		}
	}()
	return d
}

func (d *fakeDNS) answer(t *testing.T, q []byte, udp bool) []byte {
	var p dnsmessage.Parser
	if _, err := p.Start(q); err != nil {
		return nil
	}
	question, err := p.Question()
	if err != nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	name := strings.ToLower(question.Name.String())
	d.questions = append(d.questions, name+" "+question.Type.String())
	switch {
	case d.silent:
		return nil
	case d.rcode != dnsmessage.RCodeSuccess:
		return buildAnswer(t, q, d.rcode, false, nil)
	case d.truncate && udp:
		return buildAnswer(t, q, dnsmessage.RCodeSuccess, true, nil)
	}
	recs, ok := d.answers[name]
	if !ok {
		return buildAnswer(t, q, dnsmessage.RCodeNameError, false, nil)
	}
	return buildAnswer(t, q, dnsmessage.RCodeSuccess, false, recs)
}

func (d *fakeDNS) asked() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.questions...)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func ips(t *testing.T, ss ...string) []ipAddr {
	t.Helper()
	var out []ipAddr
	for _, s := range ss {
		ip, ok := parseIP(s)
		if !ok {
			t.Fatalf("bad test address %q", s)
		}
		out = append(out, ip)
	}
	return out
}

func TestResolverHosts(t *testing.T) {
	hosts := writeFile(t, "hosts", `# comment
127.0.0.1	localhost
10.1.1.1 Kafka1 kafka1.lan # a comment after names
::1 kafka1
fe80::2%eth0 linklocal
bad-address kafka2
`)
	r := &resolver{hostsPath: hosts, resolvConfPath: "/nonexistent"}
	r.servers = []dnsServer{} // no DNS: only the hosts file may answer
	cases := map[string][]ipAddr{
		"kafka1":       ips(t, "10.1.1.1", "::1"), // IPv4 first
		"KAFKA1.":      ips(t, "10.1.1.1", "::1"),
		"kafka1.lan":   ips(t, "10.1.1.1"),
		"linklocal":    ips(t, "fe80::2%eth0"),
		"localhost":    ips(t, "127.0.0.1"),
		"x.localhost":  ips(t, "127.0.0.1", "::1"), // RFC 6761, not in hosts
		"192.168.0.9":  ips(t, "192.168.0.9"),
		"2001:db8::10": ips(t, "2001:db8::10"),
	}
	for host, want := range cases {
		got, err := r.lookup(context.Background(), host)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("lookup(%q) = %v, %v; want %v", host, got, err, want)
		}
	}
	if _, err := r.lookup(context.Background(), "kafka2"); !errors.Is(err, ErrNoSuchHost) {
		t.Errorf("kafka2 (bad address in hosts, no DNS): %v, want ErrNoSuchHost", err)
	}
}

func TestResolvConf(t *testing.T) {
	p := writeFile(t, "resolv.conf", `# generated
nameserver 10.0.0.53
nameserver fe80::53%eth0
nameserver not-an-ip
domain old.example
search svc.cluster.local cluster.local.
options ndots:5 timeout:2 attempts:3 rotate
`)
	c := readResolvConf(p)
	if len(c.servers) != 2 || c.servers[0].name != "10.0.0.53" || c.servers[1].ip.zone != "eth0" || c.servers[0].port != 53 {
		t.Errorf("servers %+v", c.servers)
	}
	if !reflect.DeepEqual(c.search, []string{"svc.cluster.local", "cluster.local"}) || c.ndots != 5 || c.timeout != 2*time.Second || c.attempts != 3 {
		t.Errorf("config %+v", c)
	}
	if got, want := c.names("kafka.ns"), []string{"kafka.ns.svc.cluster.local.", "kafka.ns.cluster.local.", "kafka.ns."}; !reflect.DeepEqual(got, want) {
		t.Errorf("names with ndots 5: %v, want %v", got, want)
	}
	c.ndots = 1
	if got, want := c.names("kafka.ns"), []string{"kafka.ns.", "kafka.ns.svc.cluster.local.", "kafka.ns.cluster.local."}; !reflect.DeepEqual(got, want) {
		t.Errorf("names with ndots 1: %v, want %v", got, want)
	}
	if got := c.names("rooted.example."); !reflect.DeepEqual(got, []string{"rooted.example."}) {
		t.Errorf("rooted name: %v", got)
	}
	d := readResolvConf("/nonexistent")
	if len(d.servers) != 2 || d.servers[0].name != "127.0.0.1" || d.ndots != 1 || d.timeout != 5*time.Second || d.attempts != 2 {
		t.Errorf("defaults %+v", d)
	}
}

// TestResolverDNS resolves through fake DNS servers: the search list,
// A and AAAA, CNAMEs, a truncated answer retried over TCP, a silent server
// and a failing server skipped for the next, and NXDOMAIN everywhere.
func TestResolverDNS(t *testing.T) {
	good := startFakeDNS(t, map[string][]dnsRecord{
		"kafka1.svc.example.": {{typ: dnsmessage.TypeA, ip: "10.0.0.1"}, {typ: dnsmessage.TypeAAAA, ip: "fd00::1"}},
		"kafka2.":             {{cname: "real.example."}, {typ: dnsmessage.TypeA, ip: "10.0.0.2"}},
		"big.example.":        {{typ: dnsmessage.TypeA, ip: "10.0.0.3"}},
	})
	conf := writeFile(t, "resolv.conf", "search svc.example\noptions timeout:1 attempts:1\n")
	r := &resolver{hostsPath: "/nonexistent", resolvConfPath: conf, servers: []dnsServer{good.addr}}
	ctx := context.Background()

	got, err := r.lookup(ctx, "kafka1")
	if err != nil || !reflect.DeepEqual(got, ips(t, "10.0.0.1", "fd00::1")) {
		t.Errorf("kafka1 through the search list: %v %v", got, err)
	}
	got, err = r.lookup(ctx, "kafka2")
	if err != nil || !reflect.DeepEqual(got, ips(t, "10.0.0.2")) {
		t.Errorf("kafka2 (search misses, then as is, via a CNAME): %v %v", got, err)
	}
	asked := good.asked()
	if !strings.HasPrefix(strings.Join(asked, ","), "kafka1.svc.example. TypeA,kafka1.svc.example. TypeAAAA") {
		t.Errorf("questions %v", asked)
	}

	good.mu.Lock()
	good.truncate = true
	good.mu.Unlock()
	got, err = r.lookup(ctx, "big.example.")
	if err != nil || !reflect.DeepEqual(got, ips(t, "10.0.0.3")) {
		t.Errorf("truncated over UDP, then TCP: %v %v", got, err)
	}
	good.mu.Lock()
	good.truncate = false
	good.mu.Unlock()

	silent := startFakeDNS(t, nil)
	silent.mu.Lock()
	silent.silent = true
	silent.mu.Unlock()
	failing := startFakeDNS(t, nil)
	failing.mu.Lock()
	failing.rcode = dnsmessage.RCodeServerFailure
	failing.mu.Unlock()
	r2 := &resolver{hostsPath: "/nonexistent", resolvConfPath: conf, servers: []dnsServer{silent.addr, failing.addr, good.addr}}
	got, err = r2.lookup(ctx, "kafka1.svc.example.")
	if err != nil || !reflect.DeepEqual(got, ips(t, "10.0.0.1", "fd00::1")) {
		t.Errorf("after a silent and a failing server: %v %v", got, err)
	}
	if len(silent.asked()) == 0 || len(failing.asked()) == 0 {
		t.Errorf("the silent (%v) and failing (%v) servers were not asked first", silent.asked(), failing.asked())
	}

	_, err = r.lookup(ctx, "missing")
	if !errors.Is(err, ErrNoSuchHost) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing name: %v, want ErrNoSuchHost naming it", err)
	}
	r3 := &resolver{hostsPath: "/nonexistent", resolvConfPath: conf, servers: []dnsServer{silent.addr}}
	_, err = r3.lookup(ctx, "kafka1")
	if err == nil || !strings.Contains(err.Error(), silent.addr.name) || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("only a silent server: %v, want an error naming it", err)
	}
}
