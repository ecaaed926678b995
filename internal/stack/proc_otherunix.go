//go:build unix && !linux

package stack

import "syscall"

// setDeathSig is a no-op outside Linux: there is no parent-death signal, so
// a crashed parent leaves its children running until they are stopped.
func setDeathSig(*syscall.SysProcAttr, syscall.Signal) {}
