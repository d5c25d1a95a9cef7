package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/versions"
)

// versionFlags are the flags of version and its sub-commands.
type versionFlags struct {
	file string
	tag  bool
}

// versionCmd is the image's version, CLONE_CD_VERSION (the Medusa name);
// clonecd's own version is clonecd --version.
func versionCmd(out Output) *cobra.Command {
	f := &versionFlags{}
	c := &cobra.Command{
		Use:   "version [show|bump|set V] [flags]",
		Short: "the clone image's version: show or change CLONE_CD_VERSION (clonecd's own: clonecd --version)",
		Long: `CLONE_CD_VERSION names the clone image version (MAJOR.MINOR, e.g. 1.19)
that the ISO, the cloned node's /etc/clonecd-version and the image server
all report. It is the image's version, not clonecd's: clonecd --version
prints clonecd's own.

"show" (the default) prints it, "bump" increments MINOR (1.19 -> 1.20,
1.9 -> 1.10), "set V" writes V. Writes are atomic. "show --tag" prints the
Medusa-style configuration tag (CLONE_1_19) for cvs/git tag.

The image store's CLONE_CD_VERSION is an alias of its current version and
is not edited here: use clonecd publish / promote.`,
		Example: `  clonecd version                      # 1.19
  clonecd version bump                 # CLONE_CD_VERSION: 1.19 -> 1.20
  clonecd version set 2.0 --file clone/CLONE_CD_VERSION
  git tag $(clonecd version show --tag)`,
		Args: subcommandArgs,
		RunE: func(c *cobra.Command, args []string) error { return runVersionShow(c.Context(), out, f, args) },
	}
	c.PersistentFlags().StringVarP(&f.file, "file", "f", medium.Version, "the CLONE_CD_VERSION `FILE`")
	c.Flags().BoolVar(&f.tag, "tag", false, "print the tag form CLONE_MAJOR_MINOR")
	show := &cobra.Command{
		Use:     "show [flags]",
		Short:   "print the image's version (CLONE_CD_VERSION)",
		Example: "  clonecd version show --tag          # CLONE_1_19",
		Args:    noArgs,
		RunE:    func(c *cobra.Command, args []string) error { return runVersionShow(c.Context(), out, f, args) },
	}
	show.Flags().BoolVar(&f.tag, "tag", false, "print the tag form CLONE_MAJOR_MINOR")
	bump := &cobra.Command{
		Use:     "bump [flags]",
		Short:   "increment the image version's MINOR (1.19 -> 1.20)",
		Example: "  clonecd version bump --file clone/CLONE_CD_VERSION",
		Args:    noArgs,
		RunE:    func(c *cobra.Command, args []string) error { return runVersionBump(c.Context(), out, f, args) },
	}
	set := &cobra.Command{
		Use:     "set [flags] V",
		Short:   "write image version V (MAJOR.MINOR) to CLONE_CD_VERSION",
		Example: "  clonecd version set 1.0 --file CLONE_CD_VERSION",
		Args:    exactArgs(1, "one version MAJOR.MINOR"),
		RunE:    func(c *cobra.Command, args []string) error { return runVersionSet(c.Context(), out, f, args) },
	}
	c.AddCommand(show, bump, set)
	return c
}

// readVersion reads the CLONE_CD_VERSION file, saying how to start one.
func readVersion(file string) (versions.Version, error) {
	v, err := versions.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return v, fmt.Errorf("%s does not exist (start one with: clonecd version set 1.0 --file %s; clonecd's own version: clonecd --version)", file, file)
	}
	return v, err
}

func runVersionShow(_ context.Context, out Output, f *versionFlags, _ []string) error {
	v, err := readVersion(f.file)
	if err != nil {
		return err
	}
	if f.tag {
		fmt.Fprintln(out.Stdout, v.Tag())
	} else {
		fmt.Fprintln(out.Stdout, v)
	}
	return nil
}

func runVersionBump(_ context.Context, out Output, f *versionFlags, _ []string) error {
	if err := notStoreAlias(f.file); err != nil {
		return err
	}
	v, err := readVersion(f.file)
	if err != nil {
		return err
	}
	n := v.Next()
	if err := versions.WriteFile(f.file, n); err != nil {
		return err
	}
	fmt.Fprintf(out.Stdout, "%s: %s -> %s\n", f.file, v, n)
	return nil
}

func runVersionSet(_ context.Context, out Output, f *versionFlags, args []string) error {
	n, err := parseVersion(args[0])
	if err != nil {
		return UsageError("%v", err)
	}
	if err := notStoreAlias(f.file); err != nil {
		return err
	}
	old, oldErr := versions.ReadFile(f.file)
	if err := versions.WriteFile(f.file, n); err != nil {
		return err
	}
	if oldErr == nil {
		fmt.Fprintf(out.Stdout, "%s: %s -> %s\n", f.file, old, n)
	} else {
		fmt.Fprintf(out.Stdout, "%s: %s\n", f.file, n)
	}
	return nil
}

// notStoreAlias refuses to edit the image store's alias of its current
// version (a symlink): that would rewrite a published version.
func notStoreAlias(file string) error {
	if st, err := os.Lstat(file); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symlink (the image store's alias of its current version?); change versions with clonecd publish/promote, or give --file", file)
	}
	return nil
}
