package stack

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// runAs is an unprivileged user a child process runs as (PostgreSQL refuses
// to run as root).
type runAs struct {
	name     string
	uid, gid uint32
}

// proc is a long-running child process in its own process group, with its
// stdout and stderr in a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	stopSig syscall.Signal
	done    chan struct{} // closed when the process has exited and been reaped
	waitErr error         // valid after done
}

// startProc starts cmd as a process-group leader that receives deathSig if
// this process dies (Linux), as user when non-nil, appending its output to
// logPath. stopSig is what stop sends first.
func startProc(name string, cmd *exec.Cmd, logPath string, stopSig, deathSig syscall.Signal, user *runAs) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: opening its log: %w", name, err)
	}
	defer f.Close() // the child holds its own copy
	cmd.Stdin = nil
	cmd.Stdout = f
	cmd.Stderr = f
	configureProc(cmd, deathSig, user)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", name, cmd.Path, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, stopSig: stopSig, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends stopSig to the process group, waits up to grace for the leader
// to exit, then kills the whole group. It reports whether it had to kill.
func (p *proc) stop(grace time.Duration) (killed bool) {
	if !p.exited() {
		signalGroup(p.cmd.Process, p.stopSig)
		select {
		case <-p.done:
		case <-time.After(grace):
			killed = true
		}
	}
	// Also takes down children left behind by the leader.
	killGroup(p.cmd.Process)
	<-p.done
	return killed
}

// runLogged runs a short command to completion with its output appended to
// logPath; on failure the error carries the log's last lines.
func runLogged(name string, cmd *exec.Cmd, logPath string, user *runAs) error {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: opening its log: %w", name, err)
	}
	defer f.Close()
	cmd.Stdout = f
	cmd.Stderr = f
	configureProc(cmd, syscall.SIGKILL, user)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s failed: %w%s", name, err, logTail(logPath, 15))
	}
	return nil
}

// logTail returns the last n lines of a log file, formatted to append to an
// error message ("" if the file is empty or unreadable).
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("\nlast lines of %s:\n  %s", path, strings.Join(lines, "\n  "))
}
