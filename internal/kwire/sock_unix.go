//go:build unix

package kwire

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	sockStream = syscall.SOCK_STREAM
	sockDgram  = syscall.SOCK_DGRAM
)

// dialSocket connects a socket of type sotype (stream or datagram) to ap.
// The socket is non-blocking and wrapped in an *os.File, so its reads,
// writes and deadlines go through the runtime's poller as a net.Conn's do,
// without linking package net.
func dialSocket(ctx context.Context, sotype int, ip ipAddr, port uint16) (*os.File, error) {
	sa, family, err := sockaddr(ip, port)
	if err != nil {
		return nil, err
	}
	fd, err := socket(family, sotype)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if sotype == sockStream {
		// Requests are written whole; do not hold them back.
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	}
	pending := false
	switch err := syscall.Connect(fd, sa); err {
	case nil:
	case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
		pending = true
	default:
		syscall.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	f := os.NewFile(uintptr(fd), "socket")
	if pending {
		if err := awaitConnect(ctx, f); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

var errConnectTimeout = errors.New("connect: timed out")

// awaitConnect waits until a non-blocking connect completes: the socket
// becomes writable, then SO_ERROR tells how the connect ended.
func awaitConnect(ctx context.Context, f *os.File) error {
	if d, ok := ctx.Deadline(); ok {
		if err := f.SetWriteDeadline(d); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var connErr error
	err = rc.Write(func(fd uintptr) bool {
		n, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err != nil {
			connErr = os.NewSyscallError("getsockopt", err)
			return true
		}
		switch e := syscall.Errno(n); e {
		case 0:
			// Writability can be spurious; a connected socket has a peer.
			_, err := syscall.Getpeername(int(fd))
			return err == nil
		case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
			return false
		default:
			connErr = os.NewSyscallError("connect", e)
			return true
		}
	})
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return errConnectTimeout
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if connErr != nil {
		return connErr
	}
	return f.SetWriteDeadline(time.Time{})
}

func sockaddr(ip ipAddr, port uint16) (syscall.Sockaddr, int, error) {
	if ip.v4 {
		return &syscall.SockaddrInet4{Port: int(port), Addr: [4]byte(ip.b[12:])}, syscall.AF_INET, nil
	}
	sa := &syscall.SockaddrInet6{Port: int(port), Addr: ip.b}
	if ip.zone != "" {
		id, err := zoneIndex(ip.zone)
		if err != nil {
			return nil, 0, err
		}
		sa.ZoneId = id
	}
	return sa, syscall.AF_INET6, nil
}

// zoneIndex is the interface index of an IPv6 zone: a number, or an
// interface name as Linux lists them in /sys/class/net.
func zoneIndex(zone string) (uint32, error) {
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	b, err := os.ReadFile("/sys/class/net/" + strings.ReplaceAll(zone, "/", "") + "/ifindex")
	if err != nil {
		return 0, errors.New("unknown IPv6 zone " + zone)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 0, errors.New("unknown IPv6 zone " + zone)
	}
	return uint32(n), nil
}
