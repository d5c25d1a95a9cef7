package cli

import (
	"github.com/spf13/cobra"
)

// layoutCmd groups the commands on partition tables and layout files.
func layoutCmd(out Output) *cobra.Command {
	c := &cobra.Command{
		Use:   "layout COMMAND [flags]",
		Short: "partition tables: dump, capture, check and apply layout files (sfdisk dumps)",
		Long: `A layout file is an sfdisk dump (sfdisk -d) with "# clonecd:" lines that say
what sfdisk has no field for: file system, mount point, label, mkfs options
and the partition to preserve (/data). Real sfdisk takes the file unchanged.`,
		Example: `  clonecd layout capture /dev/sda > node.sfdisk
  clonecd layout check node.sfdisk /dev/sda
  clonecd layout apply --dry-run node.sfdisk /dev/sdb`,
		Args:        subcommandArgs,
		RunE:        needsSubcommand,
		Annotations: map[string]string{onlyGroups: "yes"},
	}
	c.AddCommand(layoutDumpCmd(out), layoutCaptureCmd(out), layoutCheckCmd(out), layoutApplyCmd(out))
	return c
}
