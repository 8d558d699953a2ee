package cli

import (
	"os/exec"
	"syscall"
)

// ownGroup puts cmd in a process group of its own, killed with the driver.
//
// The detection scenario freezes a client with SIGSTOP. Left in the
// driver's group, the client would be woken by the kernel's SIGHUP and
// SIGCONT to a stopped member of a group that becomes orphaned, which is
// what happens when the shell that started the driver (under nohup, say)
// exits mid-run: the "frozen" client would talk again and never be
// detected. In a group of its own whose parent, the driver, lives in
// another group of the same session, it is not orphaned while the driver
// runs. Pdeathsig then stands in for the terminal's SIGINT, which no
// longer reaches it.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
