package stack

import "syscall"

// setDeathSig makes the kernel send sig to the child when the thread that
// started it exits. Go keeps its threads alive (unless a goroutine exits
// while locked to one), so in practice this fires when this process dies.
// Go applies it after switching credentials, so it survives a setuid.
func setDeathSig(attr *syscall.SysProcAttr, sig syscall.Signal) {
	attr.Pdeathsig = sig
}
