//go:build !linux

package redistest

import "os/exec"

// dieWithTest does nothing where the kernel cannot tie a child's life to
// its parent's: a killed test binary may leave its server running there.
func dieWithTest(*exec.Cmd) {}
