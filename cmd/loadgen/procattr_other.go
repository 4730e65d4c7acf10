//go:build !linux

package main

import "os/exec"

// dieWithTool does nothing where the kernel cannot tie a child's life to
// its parent's: there a killed load tool may leave its children running
// (close stops them when it ends normally).
func dieWithTool(*exec.Cmd) {}
