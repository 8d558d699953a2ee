//go:build !unix

package main

import "os/exec"

// killGroup leaves cmd as it is: cancellation kills the shell only.
func killGroup(*exec.Cmd) {}

// endGroup does nothing: there is no process group.
func endGroup(*exec.Cmd) {}
