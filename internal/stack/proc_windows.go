package stack

import (
	"os"
	"os/exec"
	"syscall"
)

// configureProc does nothing on Windows: there are no process groups to
// signal, no parent-death signal and no user switch.
func configureProc(*exec.Cmd, syscall.Signal, *runAs) {}

// signalGroup kills the process: Windows cannot deliver SIGTERM.
func signalGroup(p *os.Process, _ syscall.Signal) { _ = p.Kill() }

// killGroup kills the process.
func killGroup(p *os.Process) { _ = p.Kill() }
