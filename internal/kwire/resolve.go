package kwire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// resolver turns broker host names into addresses without package net (whose
// cgo resolver makes a default build dynamically linked): IP literals,
// then the hosts file, then "localhost" names, then DNS A and AAAA queries
// over UDP (TCP when truncated) to the servers of resolv.conf, honouring its
// search, ndots, timeout and attempts. nsswitch.conf is not read: files
// come before DNS, as in the default configuration.
type resolver struct {
	hostsPath      string
	resolvConfPath string
	// servers, when set, replaces resolv.conf's name servers (tests run a
	// DNS server on a port other than 53).
	servers []dnsServer

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	addrs   []ipAddr
	expires time.Time
}

// cacheFor is how long a looked-up name is reused: a client dials the
// same brokers for its several connections within moments.
const cacheFor = 10 * time.Second

func systemResolver() *resolver {
	return &resolver{hostsPath: "/etc/hosts", resolvConfPath: "/etc/resolv.conf"}
}

// lookup returns host's addresses, IPv4 before IPv6.
func (r *resolver) lookup(ctx context.Context, host string) ([]ipAddr, error) {
	if ip, ok := parseIP(host); ok {
		return []ipAddr{ip}, nil
	}
	key := strings.ToLower(strings.TrimSuffix(host, "."))
	r.mu.Lock()
	if c, ok := r.cache[key]; ok && time.Now().Before(c.expires) {
		r.mu.Unlock()
		return c.addrs, nil
	}
	r.mu.Unlock()

	addrs, err := r.lookupUncached(ctx, key)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.cache == nil {
		r.cache = make(map[string]cached)
	}
	r.cache[key] = cached{addrs: addrs, expires: time.Now().Add(cacheFor)}
	r.mu.Unlock()
	return addrs, nil
}

func (r *resolver) lookupUncached(ctx context.Context, name string) ([]ipAddr, error) {
	if addrs := lookupHosts(r.hostsPath, name); len(addrs) > 0 {
		return addrs, nil
	}
	// RFC 6761: localhost names are loopback, whatever DNS says.
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return []ipAddr{ip4(127, 0, 0, 1), ip6Loopback}, nil
	}
	conf := readResolvConf(r.resolvConfPath)
	if r.servers != nil {
		conf.servers = r.servers
	}
	return conf.lookup(ctx, name)
}

// lookupHosts returns name's addresses in a hosts file (empty when the file
// is missing or does not list it).
func lookupHosts(path, name string) []ipAddr {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var v4, v6 []ipAddr
	for line := range bytes.Lines(data) {
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		ip, ok := parseIP(f[0])
		if !ok {
			continue
		}
		for _, h := range f[1:] {
			if strings.EqualFold(strings.TrimSuffix(h, "."), name) {
				if ip.v4 {
					v4 = append(v4, ip)
				} else {
					v6 = append(v6, ip)
				}
				break
			}
		}
	}
	return append(v4, v6...)
}

// dnsServer is a name server's address, with its text for messages.
type dnsServer struct {
	ip   ipAddr
	port uint16
	name string
}

// dnsConfig is what resolv.conf says.
type dnsConfig struct {
	servers  []dnsServer
	search   []string // without trailing dots
	ndots    int
	timeout  time.Duration
	attempts int
}

// readResolvConf parses a resolv.conf; a missing file gives the defaults
// of resolv.conf(5): a server on the local host, ndots 1, timeout 5s, 2
// attempts, the search list from the host name's domain.
func readResolvConf(path string) dnsConfig {
	c := dnsConfig{ndots: 1, timeout: 5 * time.Second, attempts: 2}
	searchSet := false
	if data, err := os.ReadFile(path); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 0 || f[0][0] == '#' || f[0][0] == ';' {
				continue
			}
			switch f[0] {
			case "nameserver":
				if len(f) > 1 {
					if ip, ok := parseIP(f[1]); ok {
						c.servers = append(c.servers, dnsServer{ip, 53, f[1]})
					}
				}
			case "domain":
				if len(f) > 1 {
					c.search, searchSet = []string{strings.TrimSuffix(f[1], ".")}, true
				}
			case "search":
				c.search, searchSet = nil, true
				for _, d := range f[1:] {
					if d = strings.TrimSuffix(d, "."); d != "" {
						c.search = append(c.search, d)
					}
				}
			case "options":
				for _, o := range f[1:] {
					k, v, _ := strings.Cut(o, ":")
					n, err := strconv.Atoi(v)
					if err != nil || n < 0 {
						continue
					}
					switch k {
					case "ndots":
						c.ndots = min(n, 15)
					case "timeout":
						c.timeout = time.Duration(max(min(n, 30), 1)) * time.Second
					case "attempts":
						c.attempts = max(min(n, 5), 1)
					}
				}
			}
		}
	}
	if len(c.servers) == 0 {
		c.servers = []dnsServer{{ip4(127, 0, 0, 1), 53, "127.0.0.1"}, {ip6Loopback, 53, "::1"}}
	}
	if !searchSet {
		if h, err := os.Hostname(); err == nil {
			if _, domain, ok := strings.Cut(h, "."); ok && domain != "" {
				c.search = []string{domain}
			}
		}
	}
	return c
}

// names lists the fully qualified names to try for name, in order: as
// given first when it has at least ndots dots, else after the search list.
func (c dnsConfig) names(name string) []string {
	if strings.HasSuffix(name, ".") {
		return []string{name}
	}
	var out []string
	asIs := strings.Count(name, ".") >= c.ndots
	if asIs {
		out = append(out, name+".")
	}
	for _, s := range c.search {
		out = append(out, name+"."+s+".")
	}
	if !asIs {
		out = append(out, name+".")
	}
	return out
}

// errNXDomain is a server's authoritative answer that a name does not
// exist: the next search name is tried, not the next server.
var errNXDomain = errors.New("name does not exist")

func (c dnsConfig) lookup(ctx context.Context, host string) ([]ipAddr, error) {
	var lastErr error
	for _, fqdn := range c.names(host) {
		addrs, err := c.query(ctx, fqdn)
		if err == nil && len(addrs) > 0 {
			return addrs, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("lookup %s: %w", host, ctx.Err())
		}
		if err != nil && !errors.Is(err, errNXDomain) {
			lastErr = err
		}
	}
	if lastErr != nil {
		return nil, fmt.Errorf("lookup %s: %w", host, lastErr)
	}
	return nil, fmt.Errorf("lookup %s: %w", host, ErrNoSuchHost)
}

// query asks the servers in turn, attempts rounds, for a name's A and AAAA
// records. An answer (records, none, or NXDOMAIN) ends the search; a
// failure or silence moves on to the next server.
func (c dnsConfig) query(ctx context.Context, fqdn string) ([]ipAddr, error) {
	var qs [2]dnsQuestion
	for i, t := range [2]uint16{dnsTypeA, dnsTypeAAAA} {
		qs[i] = dnsQuestion{id: uint16(rand.Uint32()), fqdn: strings.ToLower(fqdn), qtype: t}
		msg, err := dnsQuery(qs[i].id, fqdn, t)
		if err != nil {
			return nil, err
		}
		qs[i].msg = msg
	}
	var lastErr error
	for range c.attempts {
		for _, srv := range c.servers {
			addrs, err := exchange(ctx, srv, qs, c.timeout)
			if err == nil || errors.Is(err, errNXDomain) {
				return addrs, err
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = fmt.Errorf("DNS server %s: %w", srv.name, err)
		}
	}
	return nil, lastErr
}

type dnsQuestion struct {
	id    uint16
	fqdn  string
	qtype uint16
	msg   []byte
}

// answer checks that a response answers q, and returns its addresses, or
// errNXDomain, or whether it was truncated.
func (q dnsQuestion) answer(msg []byte) (addrs []ipAddr, truncated bool, err error) {
	a, err := parseDNS(msg)
	if err != nil {
		return nil, false, err
	}
	if a.id != q.id || !a.response || a.qname != q.fqdn || a.qtype != q.qtype {
		return nil, false, errors.New("answer does not match the question")
	}
	switch a.rcode {
	case 0:
	case dnsRCodeNXDomain:
		return nil, false, errNXDomain
	default:
		return nil, false, fmt.Errorf("server answered with rcode %d", a.rcode)
	}
	return a.addrs, a.truncated, nil
}

// exchange sends both questions to srv over UDP, and asks again over TCP
// for a truncated answer.
func exchange(ctx context.Context, srv dnsServer, qs [2]dnsQuestion, timeout time.Duration) ([]ipAddr, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	f, err := dialSocket(ctx, sockDgram, srv.ip, srv.port)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dl, _ := ctx.Deadline()
	if err := f.SetDeadline(dl); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	for _, q := range qs {
		if _, err := f.Write(q.msg); err != nil {
			return nil, err
		}
	}
	var answers [2][]ipAddr
	var done [2]bool
	buf := make([]byte, 4096)
	for !done[0] || !done[1] {
		n, err := f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = errors.New("no answer")
			}
			return nil, err
		}
		if n < 2 {
			continue
		}
		i := 0
		if binary.BigEndian.Uint16(buf) == qs[1].id {
			i = 1
		}
		if done[i] || binary.BigEndian.Uint16(buf) != qs[i].id {
			continue // a late answer to an earlier query
		}
		addrs, truncated, err := qs[i].answer(buf[:n])
		if err != nil {
			return nil, err
		}
		if truncated {
			if addrs, err = exchangeTCP(ctx, srv, qs[i]); err != nil {
				return nil, err
			}
		}
		answers[i], done[i] = addrs, true
	}
	return append(answers[0], answers[1]...), nil
}

// exchangeTCP asks one question over TCP, each message prefixed by its
// length.
func exchangeTCP(ctx context.Context, srv dnsServer, q dnsQuestion) ([]ipAddr, error) {
	f, err := dialSocket(ctx, sockStream, srv.ip, srv.port)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dl, _ := ctx.Deadline()
	if err := f.SetDeadline(dl); err != nil {
		return nil, err
	}
	msg := binary.BigEndian.AppendUint16(nil, uint16(len(q.msg)))
	if _, err := f.Write(append(msg, q.msg...)); err != nil {
		return nil, err
	}
	var size [2]byte
	if _, err := io.ReadFull(f, size[:]); err != nil {
		return nil, err
	}
	resp := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(f, resp); err != nil {
		return nil, err
	}
	addrs, _, err := q.answer(resp)
	return addrs, err
}

// ednsSize is the UDP answer size kwire accepts, the value DNS flag day
// 2020 recommends.
const ednsSize = 1232

// splitHostPort splits "host:port" or "[ipv6]:port".
func splitHostPort(addr string) (host string, port uint16, err error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("invalid broker address %q: want host:port", addr)
	}
	host, p := addr[:i], addr[i+1:]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.ContainsAny(host, ":[]") {
		return "", 0, fmt.Errorf("broker address %q: an IPv6 address goes in brackets, [::1]:9092", addr)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("broker address %q: bad port %q", addr, p)
	}
	if host == "" {
		return "", 0, fmt.Errorf("broker address %q: no host", addr)
	}
	return host, uint16(n), nil
}
