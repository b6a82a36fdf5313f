//go:build !unix

package kwire

import (
	"context"
	"errors"
	"os"
)

// Socket types, as on unix, so the callers compile.
const (
	sockStream = 1
	sockDgram  = 2
)

func dialSocket(context.Context, int, ipAddr, uint16) (*os.File, error) {
	return nil, errors.New("kwire's built-in TCP transport needs a unix system; use WithDialer")
}
