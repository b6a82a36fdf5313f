package kconn

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFromEnvAndMerge(t *testing.T) {
	env := map[string]string{EnvTLSCA: "/ca.pem", EnvSASLMechanism: "scram-sha-512", EnvSASLUser: "fn", EnvSASLPasswordFile: "/pw"}
	s, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !s.TLS || s.SASLMechanism != "SCRAM-SHA-512" || !s.SCRAM() {
		t.Fatalf("from env: %+v, want TLS implied by the CA and the mechanism in upper case", s)
	}
	m := s.Merge(Settings{SASLUser: "other", InsecureSkipVerify: true})
	if m.SASLUser != "other" || m.CAFile != "/ca.pem" || !m.InsecureSkipVerify {
		t.Fatalf("flags over env: %+v", m)
	}
	if _, err := FromEnv(func(k string) string { return map[string]string{EnvTLS: "maybe"}[k] }); err == nil {
		t.Fatal("FN_TLS=maybe accepted")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		s    Settings
		want string
	}{
		{Settings{CertFile: "c"}, "both --tls-cert and --tls-key"},
		{Settings{SASLUser: "u"}, "without --sasl-mechanism"},
		{Settings{SASLMechanism: "GSSAPI", SASLUser: "u"}, "unknown SASL mechanism"},
		{Settings{SASLMechanism: "PLAIN"}, "needs a user"},
	} {
		if err := c.s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.s, err, c.want)
		}
	}
	if err := (Settings{SASLMechanism: "PLAIN", SASLUser: "u"}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestPassword(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(path, []byte("s3cret\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := Settings{SASLMechanism: "PLAIN", SASLUser: "u", SASLPasswordFile: path}
	getenv := func(k string) string { return map[string]string{EnvSASLPassword: "from-env"}[k] }
	if p, err := s.Password(getenv); err != nil || p != "s3cret" {
		t.Fatalf("from the file: %q %v", p, err)
	}
	s.SASLPasswordFile = ""
	if p, err := s.Password(getenv); err != nil || p != "from-env" {
		t.Fatalf("from the environment: %q %v", p, err)
	}
	if _, err := s.Password(func(string) string { return "" }); err == nil {
		t.Fatal("no password accepted")
	}
}

// Env passes a password file as its path; WithoutEnv drops every setting.
func TestEnv(t *testing.T) {
	s := Settings{TLS: true, CAFile: "/ca", SASLMechanism: "PLAIN", SASLUser: "u", SASLPasswordFile: "/pw"}
	env := s.Env(func(string) string { return "leak" })
	want := []string{"FN_TLS=1", "FN_TLS_CA=/ca", "FN_SASL_MECHANISM=PLAIN", "FN_SASL_USER=u", "FN_SASL_PASSWORD_FILE=/pw"}
	if !slices.Equal(env, want) {
		t.Fatalf("Env %v, want %v", env, want)
	}
	s.SASLPasswordFile = ""
	if env := s.Env(func(k string) string { return map[string]string{EnvSASLPassword: "p"}[k] }); !slices.Contains(env, "FN_SASL_PASSWORD=p") {
		t.Fatalf("Env without a file: %v", env)
	}
	got := WithoutEnv([]string{"PATH=/bin", "FN_SASL_PASSWORD=p", "FN_TLS_CA=/ca", "FN_TOPIC=t"})
	if !slices.Equal(got, []string{"PATH=/bin", "FN_TOPIC=t"}) {
		t.Fatalf("WithoutEnv: %v", got)
	}
}
