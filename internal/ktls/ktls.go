// Package ktls builds the TLS client configuration of microfn's Kafka
// connections from kconn.Settings and says in words why a handshake
// failed. sarama's configuration (internal/kafka) and a function binary's
// kwire client (fn/secure) share it.
package ktls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/microfn/microfn/internal/kconn"
)

// Config reads the CA bundle and client certificate s names. With no CA
// bundle the system's roots are trusted.
func Config(s kconn.Settings) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName, InsecureSkipVerify: s.InsecureSkipVerify}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA bundle: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA bundle %s holds no PEM certificate", s.CAFile)
		}
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// HandshakeError is a failed TLS handshake with a broker.
type HandshakeError struct{ Err error }

func (e *HandshakeError) Error() string { return "TLS handshake: " + e.Err.Error() }
func (e *HandshakeError) Unwrap() error { return e.Err }

// Client runs the TLS handshake on raw, a fresh connection to addr, before
// ctx ends. The server name defaults to addr's host.
func Client(ctx context.Context, raw net.Conn, addr string, cfg *tls.Config) (*tls.Conn, error) {
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		if errors.Is(err, context.DeadlineExceeded) {
			if d, ok := ctx.Deadline(); ok {
				err = fmt.Errorf("no answer within %v", time.Until(d).Round(time.Second))
			}
			err = fmt.Errorf("no TLS answer in time: %w", err)
		}
		return nil, &HandshakeError{err}
	}
	return conn, nil
}

// Cause names why a connection failed in TLS, or "" when it did not.
func Cause(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var handshake *HandshakeError
	switch {
	case errors.As(err, &unknownCA):
		return "TLS: the broker's certificate is not signed by a trusted CA (give the CA bundle with --tls-ca)"
	case errors.As(err, &hostname):
		return fmt.Sprintf("TLS: the broker's certificate is not valid for %q (it names %v; --tls-server-name sets the name expected)",
			hostname.Host, hostname.Certificate.DNSNames)
	case errors.As(err, &invalid):
		return "TLS: the broker's certificate is invalid"
	case errors.As(err, &handshake):
		return "TLS handshake failed: the listener does not speak TLS (a plaintext listener? drop --tls)"
	}
	return ""
}
