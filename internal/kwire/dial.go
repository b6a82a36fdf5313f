package kwire

import (
	"context"
	"errors"
	"time"
)

// dialTCP is the default Dialer: resolve addr's host, then connect to its
// addresses in turn, each given an equal share of the time left.
func (r *resolver) dialTCP(ctx context.Context, addr string) (Conn, error) {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := r.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for i, ip := range ips {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if d, ok := ctx.Deadline(); ok && len(ips)-i > 1 {
			share := time.Until(d) / time.Duration(len(ips)-i)
			actx, cancel = context.WithTimeout(ctx, share)
		}
		f, err := dialSocket(actx, sockStream, ip, port)
		cancel()
		if err == nil {
			return f, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = errors.New("no address")
	}
	return nil, firstErr
}
