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
