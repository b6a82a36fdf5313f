// Package secure gives a function binary TLS and SASL/SCRAM for its
// standalone runs: import it for its side effect,
//
//	import _ "github.com/microfn/microfn/fn/secure"
//
// and the FN_TLS_* and FN_SASL_* settings (or the same flags) work. It is
// not part of package fn because it links crypto/tls and net, which make
// every start of a function slower (see the README); a function run only
// by the restarter, or standalone against a plaintext Kafka, needs
// neither. SASL PLAIN needs no import, though without TLS it sends the
// password in the clear. A standalone run given TLS or SCRAM settings
// without this import exits with code 2 and says to add it.
package secure

import (
	"context"
	"fmt"
	"net"

	"github.com/microfn/microfn/internal/fnhook"
	"github.com/microfn/microfn/internal/kconn"
	"github.com/microfn/microfn/internal/ktls"
	"github.com/microfn/microfn/internal/kwire"
	_ "github.com/microfn/microfn/internal/kwire/kscram" // SCRAM-SHA-256 and SCRAM-SHA-512
)

func init() { fnhook.TLSDialer = dialer }

// dialer returns a kwire dialer that connects over TLS with s's settings;
// a failed handshake says why in words.
func dialer(s kconn.Settings) (kwire.Dialer, error) {
	cfg, err := ktls.Config(s)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, addr string) (kwire.Conn, error) {
		var d net.Dialer
		raw, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		conn, err := ktls.Client(ctx, raw, addr, cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ktls.Cause(err), err)
		}
		return conn, nil
	}, nil
}
