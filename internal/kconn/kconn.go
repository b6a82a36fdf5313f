// Package kconn is how microfn is told to connect to a secured Kafka: TLS
// and SASL settings, from flags, FN_* environment variables or a broker
// URL's query. It reads no file and links no crypto, so that a function
// binary, which starts once per message, pays for TLS only when it imports
// it (package fn/secure); internal/kafka turns Settings into sarama's
// configuration, fn/secure into kwire's.
package kconn

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// The environment variables of the settings, read by fnctl and by
// standalone function binaries.
const (
	EnvTLS                   = "FN_TLS"                      // "1": TLS with the system's roots
	EnvTLSCA                 = "FN_TLS_CA"                   // PEM file of the CA certificates to trust
	EnvTLSCert               = "FN_TLS_CERT"                 // PEM file of the client certificate
	EnvTLSKey                = "FN_TLS_KEY"                  // PEM file of the client certificate's key
	EnvTLSServerName         = "FN_TLS_SERVER_NAME"          // name the brokers' certificates must carry
	EnvTLSInsecureSkipVerify = "FN_TLS_INSECURE_SKIP_VERIFY" // "1": accept any certificate
	EnvSASLMechanism         = "FN_SASL_MECHANISM"           // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	EnvSASLUser              = "FN_SASL_USER"
	EnvSASLPasswordFile      = "FN_SASL_PASSWORD_FILE" // file holding the password (one line)
	EnvSASLPassword          = "FN_SASL_PASSWORD"      // the password itself, when no file
)

// Envs lists every variable above.
var Envs = []string{EnvTLS, EnvTLSCA, EnvTLSCert, EnvTLSKey, EnvTLSServerName, EnvTLSInsecureSkipVerify,
	EnvSASLMechanism, EnvSASLUser, EnvSASLPasswordFile, EnvSASLPassword}

// InsecureWarning is logged, every time, by a client that does not verify
// the brokers' certificates.
const InsecureWarning = "TLS certificate verification is OFF (--tls-insecure-skip-verify): anyone between here and Kafka can read and change the traffic and take the credentials"

// Mechanisms are the SASL mechanisms microfn speaks.
var Mechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// Settings say how to connect: TLS when TLS is set (or any TLS file or
// option is), SASL when SASLMechanism is set. The password is never a
// field of its own that a command line could carry: it comes from
// SASLPasswordFile, else from FN_SASL_PASSWORD (see Password).
type Settings struct {
	TLS                bool   `json:"tls,omitempty"`
	CAFile             string `json:"tls_ca,omitempty"`
	CertFile           string `json:"tls_cert,omitempty"`
	KeyFile            string `json:"tls_key,omitempty"`
	ServerName         string `json:"tls_server_name,omitempty"`
	InsecureSkipVerify bool   `json:"tls_insecure_skip_verify,omitempty"`

	SASLMechanism    string `json:"sasl_mechanism,omitempty"`
	SASLUser         string `json:"sasl_user,omitempty"`
	SASLPasswordFile string `json:"sasl_password_file,omitempty"`
}

// FromEnv reads the settings from the environment.
func FromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{
		CAFile: getenv(EnvTLSCA), CertFile: getenv(EnvTLSCert), KeyFile: getenv(EnvTLSKey),
		ServerName: getenv(EnvTLSServerName), SASLMechanism: getenv(EnvSASLMechanism),
		SASLUser: getenv(EnvSASLUser), SASLPasswordFile: getenv(EnvSASLPasswordFile),
	}
	var err error
	if s.TLS, err = boolEnv(getenv, EnvTLS); err != nil {
		return s, err
	}
	if s.InsecureSkipVerify, err = boolEnv(getenv, EnvTLSInsecureSkipVerify); err != nil {
		return s, err
	}
	return s.normal(), nil
}

func boolEnv(getenv func(string) string, name string) (bool, error) {
	switch strings.ToLower(getenv(name)) {
	case "", "0", "false", "no":
		return false, nil
	case "1", "true", "yes":
		return true, nil
	}
	return false, fmt.Errorf("%s=%q: want 1 or 0", name, getenv(name))
}

// Merge returns s with the fields o sets replacing s's: flags over the
// environment.
func (s Settings) Merge(o Settings) Settings {
	s.TLS = s.TLS || o.TLS
	s.InsecureSkipVerify = s.InsecureSkipVerify || o.InsecureSkipVerify
	for _, f := range []struct{ dst, src *string }{
		{&s.CAFile, &o.CAFile}, {&s.CertFile, &o.CertFile}, {&s.KeyFile, &o.KeyFile},
		{&s.ServerName, &o.ServerName}, {&s.SASLMechanism, &o.SASLMechanism},
		{&s.SASLUser, &o.SASLUser}, {&s.SASLPasswordFile, &o.SASLPasswordFile},
	} {
		if *f.src != "" {
			*f.dst = *f.src
		}
	}
	return s.normal()
}

// normal turns TLS on when a TLS setting asks for it and spells the
// mechanism in upper case.
func (s Settings) normal() Settings {
	if s.CAFile != "" || s.CertFile != "" || s.KeyFile != "" || s.ServerName != "" || s.InsecureSkipVerify {
		s.TLS = true
	}
	s.SASLMechanism = strings.ToUpper(s.SASLMechanism)
	return s
}

// Secured says whether s asks for TLS or SASL.
func (s Settings) Secured() bool { return s.TLS || s.SASLMechanism != "" }

// SCRAM says whether s asks for a SCRAM mechanism.
func (s Settings) SCRAM() bool { return strings.HasPrefix(s.SASLMechanism, "SCRAM-") }

// Validate checks what can be checked without reading files.
func (s Settings) Validate() error {
	if (s.CertFile == "") != (s.KeyFile == "") {
		return errors.New("a client certificate needs both --tls-cert and --tls-key")
	}
	if s.SASLMechanism == "" {
		if s.SASLUser != "" || s.SASLPasswordFile != "" {
			return errors.New("a SASL user or password without --sasl-mechanism (" + strings.Join(Mechanisms, ", ") + ")")
		}
		return nil
	}
	known := false
	for _, m := range Mechanisms {
		known = known || m == s.SASLMechanism
	}
	if !known {
		return fmt.Errorf("unknown SASL mechanism %q (want %s)", s.SASLMechanism, strings.Join(Mechanisms, ", "))
	}
	if s.SASLUser == "" {
		return fmt.Errorf("SASL %s needs a user (--sasl-user or %s)", s.SASLMechanism, EnvSASLUser)
	}
	return nil
}

// Password reads the SASL password: the first line of SASLPasswordFile,
// else FN_SASL_PASSWORD. It is never part of Settings, so that settings can
// be logged, stored and shown.
func (s Settings) Password(getenv func(string) string) (string, error) {
	if s.SASLPasswordFile != "" {
		b, err := os.ReadFile(s.SASLPasswordFile)
		if err != nil {
			return "", fmt.Errorf("SASL password file: %w", err)
		}
		p, _, _ := strings.Cut(string(b), "\n")
		p = strings.TrimSuffix(p, "\r")
		if p == "" {
			return "", fmt.Errorf("SASL password file %s is empty", s.SASLPasswordFile)
		}
		return p, nil
	}
	if p := getenv(EnvSASLPassword); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("SASL %s needs a password: --sasl-password-file, or %s or %s in the environment",
		s.SASLMechanism, EnvSASLPasswordFile, EnvSASLPassword)
}

// Env is s as FN_* variables, for a process that should connect as this
// one does. The password goes as its file when there is one, else as
// FN_SASL_PASSWORD (an environment is not shown by ps).
func (s Settings) Env(getenv func(string) string) []string {
	var env []string
	add := func(k, v string) {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	if s.TLS {
		add(EnvTLS, "1")
	}
	add(EnvTLSCA, s.CAFile)
	add(EnvTLSCert, s.CertFile)
	add(EnvTLSKey, s.KeyFile)
	add(EnvTLSServerName, s.ServerName)
	if s.InsecureSkipVerify {
		add(EnvTLSInsecureSkipVerify, "1")
	}
	add(EnvSASLMechanism, s.SASLMechanism)
	add(EnvSASLUser, s.SASLUser)
	add(EnvSASLPasswordFile, s.SASLPasswordFile)
	if s.SASLMechanism != "" && s.SASLPasswordFile == "" {
		add(EnvSASLPassword, getenv(EnvSASLPassword))
	}
	return env
}

// WithoutEnv returns env without the variables of the settings: what a
// child process gets unless it is meant to connect to Kafka itself.
func WithoutEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		secret := false
		for _, name := range Envs {
			secret = secret || k == name
		}
		if !secret {
			out = append(out, kv)
		}
	}
	return out
}
