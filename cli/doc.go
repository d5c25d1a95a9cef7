// Package cli is clonecd's command line: the list of commands in the order
// an admin uses them (commands.go), each command's constructor beside its
// run function, in its own file or in its group's (layout.go: layout and
// its sub-commands; store.go: the store's versions; shell.go: completion,
// man, help), the flag types that check values when they are parsed
// (flags.go), one exit status convention (0 yes/done, 1 no or some nodes
// failed, 2 error, 3 stopped at --break), and the multi-call entry points
// (init as PID 1, modprobe) chosen by argv[0] or PID. It is built on
// spf13/cobra and pflag (GNU-style flags, completion, man pages from the
// same help).
package cli
