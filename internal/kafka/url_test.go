package kafka

import (
	"strings"
	"testing"

	"github.com/microfn/microfn/internal/kconn"
)

func TestParseURL(t *testing.T) {
	brokers, s, err := ParseURL("kafka+tls://h1:9093,h2:9093?ca=/ca.pem&sasl=scram-sha-512&user=fn&password-file=/pw&server-name=kafka")
	want := kconn.Settings{TLS: true, CAFile: "/ca.pem", ServerName: "kafka", SASLMechanism: "SCRAM-SHA-512", SASLUser: "fn", SASLPasswordFile: "/pw"}
	if err != nil || brokers != "h1:9093,h2:9093" || s != want {
		t.Fatalf("got %q %+v %v", brokers, s, err)
	}
	if _, s, err := ParseURL("kafka://h:9092?sasl=plain&user=u"); err != nil || s.TLS || s.SASLMechanism != "PLAIN" {
		t.Fatalf("SASL without TLS: %+v %v", s, err)
	}
	for raw, msg := range map[string]string{
		"kafka+tls://h:9093?sasl=plain&user=u&password=x": "never goes in a URL",
		"kafka://h:9092?ca=/ca.pem":                       "need the kafka+tls:// scheme",
		"kafka+tls://h:9093?colour=blue":                  "unknown setting",
		"kafka+tls://h:9093?insecure-skip-verify=maybe":   "want 1 or 0",
		"kafka+tls://h:9093?sasl=gssapi&user=u":           "unknown SASL mechanism",
		"amqp://h:5672?password=x":                        "unknown scheme",
	} {
		if _, _, err := ParseURL(raw); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", raw, err, msg)
		}
		if _, _, err := ParseURL(raw); err != nil && strings.Contains(err.Error(), "password=x") {
			t.Errorf("%s: the error repeats the password: %v", raw, err)
		}
	}
}
