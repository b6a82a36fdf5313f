package kwire

import "syscall"

func socket(family, sotype int) (int, error) {
	return syscall.Socket(family, sotype|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
}
