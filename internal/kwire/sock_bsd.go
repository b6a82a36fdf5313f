//go:build unix && !linux

package kwire

import "syscall"

func socket(family, sotype int) (int, error) {
	// Without SOCK_CLOEXEC, hold ForkLock so no exec inherits the socket.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(family, sotype, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}
