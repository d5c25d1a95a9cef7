package main

import (
	"os"

	"github.com/clonecd/clonecd/cli"
)

func main() {
	os.Exit(cli.Main(os.Args))
}
