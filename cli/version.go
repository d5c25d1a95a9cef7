package cli

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"

	"github.com/clonecd/clonecd/versions"
)

func init() {
	Register(&Command{
		Name:    "version",
		Args:    "[show|bump|set V] [--file CLONE_CD_VERSION]",
		Summary: "show or change CLONE_CD_VERSION (MAJOR.MINOR; bump increments MINOR)",
		Help: `CLONE_CD_VERSION names the clone image version (e.g. 1.19) that the ISO,
the cloned node's /etc/clonecd-version and the image server all report.
"show" (the default) prints it, "bump" increments MINOR (1.19 -> 1.20,
1.9 -> 1.10), "set V" writes V. Writes are atomic. "show --tag" prints the
Medusa-style configuration tag (CLONE_1_19) for cvs/git tag.

The image store's CLONE_CD_VERSION is an alias of its current version and
is not edited here: use clonecd publish / promote.

examples:
  clonecd version                      # 1.19
  clonecd version bump                 # 1.19 -> 1.20
  clonecd version set 2.0 --file clone/CLONE_CD_VERSION
  git tag $(clonecd version show --tag)`,
		Setup: func(fs *flag.FlagSet) Runner {
			file := fs.String("file", versions.FileName, "the CLONE_CD_VERSION file")
			tag := fs.Bool("tag", false, "show: print the tag form CLONE_MAJOR_MINOR")
			return func(args []string) error { return runVersion(*file, *tag, args) }
		},
	})
}

func runVersion(file string, tag bool, args []string) error {
	op := "show"
	if len(args) > 0 {
		op = args[0]
	}
	switch {
	case op == "show" && len(args) <= 1:
		v, err := versions.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s does not exist (start one with: clonecd version set 1.0 --file %s)", file, file)
		}
		if err != nil {
			return err
		}
		if tag {
			fmt.Fprintln(Stdout, v.Tag())
		} else {
			fmt.Fprintln(Stdout, v)
		}
		return nil
	case op == "bump" && len(args) == 1:
		if err := notStoreAlias(file); err != nil {
			return err
		}
		v, err := versions.ReadFile(file)
		if err != nil {
			return err
		}
		n := v.Next()
		if err := versions.WriteFile(file, n); err != nil {
			return err
		}
		fmt.Fprintf(Stdout, "%s -> %s\n", v, n)
		return nil
	case op == "set" && len(args) == 2:
		if err := notStoreAlias(file); err != nil {
			return err
		}
		n, err := versions.ParseVersion(args[1])
		if err != nil {
			return UsageError("%v", err)
		}
		old, err := versions.ReadFile(file)
		if err := versions.WriteFile(file, n); err != nil {
			return err
		}
		if err == nil {
			fmt.Fprintf(Stdout, "%s -> %s\n", old, n)
		} else {
			fmt.Fprintln(Stdout, n)
		}
		return nil
	}
	return UsageError("want: version [show|bump|set V]")
}

// notStoreAlias refuses to edit the image store's alias of its current
// version (a symlink): that would rewrite a published version.
func notStoreAlias(file string) error {
	if st, err := os.Lstat(file); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symlink (the image store's alias of its current version?); change versions with clonecd publish/promote, or give --file", file)
	}
	return nil
}
