//go:build !linux

package cli

import (
	"os/exec"
	"syscall"
)

// ownGroup puts cmd in a process group of its own, so that a SIGSTOP of it
// is not undone by the SIGCONT the kernel sends to a stopped member of a
// group that becomes orphaned (see proc_linux.go).
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
