// Command mkdeb builds clonecd's Debian package (make deb):
//
//	go run ./packaging/cmd/mkdeb -o build build/clonecd
//
// It prints the path of clonecd_VERSION_ARCH.deb; VERSION comes from the
// binary's --version. It is its own main package so that cmd/clonecd
// never links nfpm.
package main
