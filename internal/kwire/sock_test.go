//go:build linux

package kwire

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestDialSocket: the syscall transport connects over IPv4 and IPv6,
// reads and writes through the poller, honours deadlines, and bounds a
// connect that gets no answer.
func TestDialSocket(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			addr := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				io.Copy(c, c)
			}()
			host, port, _ := net.SplitHostPort(ln.Addr().String())
			ip, _ := parseIP(host)
			p, _ := strconv.Atoi(port)
			f, err := dialSocket(context.Background(), sockStream, ip, uint16(p))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(f, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo %q %v", buf, err)
			}
			f.SetDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := f.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read past the deadline: %v", err)
			}
		})
	}

	t.Run("no answer", func(t *testing.T) {
		// A listener with a full backlog drops SYNs: connect waits.
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(fd)
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Listen(fd, 0); err != nil {
			t.Fatal(err)
		}
		sa, _ := syscall.Getsockname(fd)
		port := uint16(sa.(*syscall.SockaddrInet4).Port)
		var filled []io.Closer
		defer func() {
			for _, c := range filled {
				c.Close()
			}
		}()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			f, err := dialSocket(ctx, sockStream, ip4(127, 0, 0, 1), port)
			cancel()
			if err != nil {
				if !errors.Is(err, errConnectTimeout) {
					t.Fatalf("connect to a full backlog: %v, want a timeout", err)
				}
				return
			}
			filled = append(filled, f)
			if len(filled) > 64 {
				t.Skip("the kernel accepted 64 connections on a backlog of 0")
			}
		}
	})
}
