package main

import (
	"os/exec"
	"syscall"
)

// dieWithTool has cmd killed when the load tool dies, whatever ends it,
// rather than left running with its Redis or leadgate.
func dieWithTool(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
