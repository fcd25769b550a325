package azuritetest

import (
	"os"
	"syscall"
)

// sysProcAttr puts Azurite in its own process group and has the kernel kill
// it when the test binary exits.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills Azurite's process group.
func killGroup(p *os.Process) {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
	p.Kill()
}
