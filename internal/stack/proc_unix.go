//go:build unix

package stack

import (
	"os"
	"os/exec"
	"syscall"
)

// configureProc puts cmd in its own process group (so stopping it reaches
// its children), arranges for deathSig when this process dies (Linux only)
// and switches to user when non-nil.
func configureProc(cmd *exec.Cmd, deathSig syscall.Signal, user *runAs) {
	attr := &syscall.SysProcAttr{Setpgid: true}
	setDeathSig(attr, deathSig)
	if user != nil {
		attr.Credential = &syscall.Credential{Uid: user.uid, Gid: user.gid}
	}
	cmd.SysProcAttr = attr
}

// signalGroup sends sig to the process group p leads.
func signalGroup(p *os.Process, sig syscall.Signal) {
	if err := syscall.Kill(-p.Pid, sig); err != nil {
		_ = p.Signal(sig)
	}
}

// killGroup kills the process group p leads (no-op if it is gone).
func killGroup(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	_ = p.Kill()
}
