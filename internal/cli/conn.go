package cli

import (
	"io"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/kconn"
)

// addKafkaFlags adds the connection flags of a command that talks to Kafka.
// Each overrides its FN_* variable.
func addKafkaFlags(f *pflag.FlagSet, s *kconn.Settings) {
	f.BoolVar(&s.TLS, "tls", false, "connect to Kafka over TLS, trusting the system's CAs (default $"+kconn.EnvTLS+")")
	f.StringVar(&s.CAFile, "tls-ca", "", "PEM file of the CA certificates to trust; implies --tls (default $"+kconn.EnvTLSCA+")")
	f.StringVar(&s.CertFile, "tls-cert", "", "PEM file of a client certificate; implies --tls (default $"+kconn.EnvTLSCert+")")
	f.StringVar(&s.KeyFile, "tls-key", "", "PEM file of the client certificate's key (default $"+kconn.EnvTLSKey+")")
	f.StringVar(&s.ServerName, "tls-server-name", "", "name the brokers' certificates must carry (default: the broker's host; $"+kconn.EnvTLSServerName+")")
	f.BoolVar(&s.InsecureSkipVerify, "tls-insecure-skip-verify", false, "accept any broker certificate: no protection against interception (default $"+kconn.EnvTLSInsecureSkipVerify+")")
	f.StringVar(&s.SASLMechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default $"+kconn.EnvSASLMechanism+")")
	f.StringVar(&s.SASLUser, "sasl-user", "", "SASL user name (default $"+kconn.EnvSASLUser+")")
	f.StringVar(&s.SASLPasswordFile, "sasl-password-file", "", "file holding the SASL password (default $"+kconn.EnvSASLPasswordFile+", else the password in $"+kconn.EnvSASLPassword+")")
}

// kafkaSettings are flags over the FN_* environment.
func kafkaSettings(flags kconn.Settings) (kconn.Settings, error) {
	env, err := kconn.FromEnv(os.Getenv)
	if err != nil {
		return env, usageError{err}
	}
	s := env.Merge(flags)
	if err := s.Validate(); err != nil {
		return s, usageError{err}
	}
	return s, nil
}

// kafkaConn loads the connection of a command: flags over the FN_*
// environment. A setting it cannot use (a missing file, no password) is a
// usage error; an insecure-skip-verify is reported on errw.
func kafkaConn(flags kconn.Settings, errw io.Writer) (*kafka.Conn, error) {
	s, err := kafkaSettings(flags)
	if err != nil {
		return nil, err
	}
	if errw == nil {
		errw = io.Discard
	}
	c, err := kafka.Load(s, os.Getenv, slog.New(slog.NewTextHandler(errw, nil)))
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}
