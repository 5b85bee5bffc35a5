//go:build !linux

package main

import "syscall"

// childAttr: outside Linux there is no Pdeathsig; the harness stops its children on every exit path
// it controls. (Memory and CPU sampling read /proc, so the soak and CPU/req need Linux anyway.)
func childAttr() *syscall.SysProcAttr { return nil }
