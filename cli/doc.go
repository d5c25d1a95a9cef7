// Package cli holds clonecd's subcommands: a registry that each command's
// file adds itself to, the dispatcher that main calls, and the multi-call
// entry points (init, modprobe) chosen by argv[0] or PID.
package cli
