// Command mkdeb builds clonecd's Debian package (make deb):
//
//	go run ./packaging/cmd/mkdeb -o build build/clonecd
//
// It prints the path of clonecd_VERSION_ARCH.deb; VERSION comes from the
// binary's --version. It is its own main package so that cmd/clonecd
// never links nfpm.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/clonecd/clonecd/packaging"
)

func main() {
	out := flag.String("o", "build", "`DIR` to write the package into")
	rev := flag.String("revision", "1", "Debian `REVISION`")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mkdeb [-o DIR] [-revision N] CLONECD_BINARY\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	res, err := packaging.Build(context.Background(), packaging.Options{Binary: flag.Arg(0), OutDir: *out, Revision: *rev})
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkdeb: %v\n", err)
		os.Exit(2)
	}
	fmt.Println(res.Path)
}
