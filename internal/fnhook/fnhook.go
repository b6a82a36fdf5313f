// Package fnhook lets microfn's own packages reach what package fn keeps
// unexported from function authors: fntest runs a declared subscriber's
// handler through it. Package fn sets the hooks when it is initialised.
package fnhook

import (
	"context"

	"github.com/microfn/microfn/codec"
	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/kconn"
	"github.com/microfn/microfn/internal/kwire"
)

// Subscriber is a declared subscriber's settings.
type Subscriber struct {
	Name        string
	Topic       string
	Codec       codec.Codec // the payload codec: codec.Raw for a []byte payload
	MaxAttempts int
	DeadLetter  string
	// Err is what is wrong with the declaration, or nil.
	Err error
}

var (
	// Describe returns the settings of f, an *fn.Func.
	Describe func(f any) Subscriber
	// TLSDialer, set by package fn/secure, opens TLS connections for a
	// standalone run's Kafka client (kwire). Nil: this binary has no TLS,
	// which package fn links only when a function imports fn/secure.
	TLSDialer func(kconn.Settings) (kwire.Dialer, error)
	// Invoke runs f's handler (f an *fn.Func) once on m (an *fn.Message)
	// under f's timeout.
	Invoke func(ctx context.Context, f, m any) delivery.Result
)
