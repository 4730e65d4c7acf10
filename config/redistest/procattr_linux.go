package redistest

import (
	"os/exec"
	"syscall"
)

// dieWithTest has cmd killed when the test binary that started it dies (a
// -timeout panic, a cancelled benchmark run), rather than left running.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
