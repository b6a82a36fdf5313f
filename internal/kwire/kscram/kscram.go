// Package kscram adds SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802,
// RFC 7677) to kwire. Importing it registers both with
// kwire.NewMechanism. It is a package of its own because the standard
// library's crypto packages it links add about 0.07 ms to every process
// start.
package kscram

import (
	"github.com/microfn/microfn/internal/kwire"
	"github.com/microfn/microfn/internal/scram"
)

func init() {
	kwire.RegisterMechanism("SCRAM-SHA-256", SHA256)
	kwire.RegisterMechanism("SCRAM-SHA-512", SHA512)
}

// SHA256 is SASL/SCRAM-SHA-256 with a user name and password.
func SHA256(user, password string) kwire.Mechanism { return mechanism{scram.SHA256(user, password)} }

// SHA512 is SASL/SCRAM-SHA-512 with a user name and password.
func SHA512(user, password string) kwire.Mechanism { return mechanism{scram.SHA512(user, password)} }

type mechanism struct{ *scram.Mechanism }

func (m mechanism) Start() kwire.Session { return m.Mechanism.Start() }
