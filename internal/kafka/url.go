package kafka

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/microfn/microfn/internal/kconn"
)

// ParseURL reads a Kafka broker URL:
//
//	kafka://h1:9092,h2:9092                  plaintext
//	kafka+tls://h1:9093?ca=/etc/kafka/ca.pem TLS
//	kafka+tls://h1:9093?sasl=scram-sha-512&user=fn&password-file=/run/secrets/kafka
//
// Its query holds the settings: ca, cert, key, server-name,
// insecure-skip-verify=1, sasl, user, password-file. A password itself is
// refused: a URL ends up in logs and command lines. Without password-file
// the password comes from FN_SASL_PASSWORD.
func ParseURL(raw string) (brokers string, s kconn.Settings, err error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(raw), "://")
	if !ok {
		return "", s, fmt.Errorf("broker URL %q: want kafka://HOST:PORT or kafka+tls://HOST:PORT", withoutQuery(raw))
	}
	switch scheme {
	case "kafka":
	case "kafka+tls":
		s.TLS = true
	default:
		return "", s, fmt.Errorf("broker URL %q: unknown scheme %q (want kafka or kafka+tls)", withoutQuery(raw), scheme)
	}
	brokers, query, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", s, fmt.Errorf("broker URL query: %w", err)
	}
	fields := map[string]*string{
		"ca": &s.CAFile, "cert": &s.CertFile, "key": &s.KeyFile, "server-name": &s.ServerName,
		"sasl": &s.SASLMechanism, "user": &s.SASLUser, "password-file": &s.SASLPasswordFile,
	}
	for k, vs := range q {
		v := vs[len(vs)-1]
		if f, ok := fields[k]; ok {
			*f = v
			continue
		}
		switch k {
		case "insecure-skip-verify":
			switch v {
			case "1", "true":
				s.InsecureSkipVerify = true
			case "0", "false":
			default:
				return "", s, fmt.Errorf("broker URL: insecure-skip-verify=%q: want 1 or 0", v)
			}
		case "password":
			return "", s, fmt.Errorf("broker URL: a password never goes in a URL: use password-file= or %s", kconn.EnvSASLPassword)
		default:
			return "", s, fmt.Errorf("broker URL: unknown setting %q (want ca, cert, key, server-name, insecure-skip-verify, sasl, user, password-file)", k)
		}
	}
	s = s.Merge(kconn.Settings{})
	if scheme == "kafka" && s.TLS {
		// kafka:// with TLS settings would read as plaintext: say which is meant.
		return "", s, fmt.Errorf("broker URL kafka://%s: TLS settings need the kafka+tls:// scheme", brokers)
	}
	return brokers, s, s.Validate()
}

// withoutQuery is a URL to show in an error: its query may hold what
// should not be shown.
func withoutQuery(raw string) string {
	u, _, _ := strings.Cut(raw, "?")
	return u
}
