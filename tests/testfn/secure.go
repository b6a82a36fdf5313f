//go:build secure

package main

// Built with -tags secure, testfn runs standalone over TLS and SCRAM.
import _ "github.com/microfn/microfn/fn/secure"
