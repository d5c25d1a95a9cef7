package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/trust"
)

// keyCmd groups the commands on the master's signing key.
func keyCmd(out Output) *cobra.Command {
	c := &cobra.Command{
		Use:   "key COMMAND [flags]",
		Short: "the master's signing key: publish --key signs versions, cloners trust its public half",
		Long: `The master signs each version's MANIFEST with a minisign (ed25519) key, so
a cloner built with --trust KEY.pub uses only what the master signed.
Anyone checks a signature by hand with Debian's minisign:
minisign -Vm MANIFEST -p KEY.pub.`,
		Example: `  clonecd key generate -o /root/.clonecd/clonecd.key
  clonecd publish node.cpio.gz --key /root/.clonecd/clonecd.key`,
		Args:        subcommandArgs,
		RunE:        needsSubcommand,
		Annotations: map[string]string{onlyGroups: "yes"},
	}
	c.AddCommand(keyGenerateCmd(out))
	return c
}

type keyGenerateFlags struct {
	output string
}

func keyGenerateCmd(out Output) *cobra.Command {
	f := &keyGenerateFlags{}
	c := &cobra.Command{
		Use:   "generate [-o FILE]",
		Short: "make a signing key pair: FILE (secret, 0600) and FILE.pub",
		Long: `Makes an ed25519 key pair in minisign's format: FILE, the secret key (mode
0600, not encrypted, so that publish runs unattended; keep it on the master
only) and FILE.pub, the public key that build --trust and fetch --trust
take. It prints the key's ID (as minisign prints it) and the public key's
file. An existing file is never replaced. A key made by minisign -G -W is
the same thing; one made by minisign -G (passphrase) works too.`,
		Example: `  clonecd key generate -o /root/.clonecd/clonecd.key
  clonecd key generate`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runKeyGenerate(c.Context(), out, f, args) },
	}
	c.Flags().StringVarP(&f.output, "output", "o", "clonecd.key", "secret key `FILE`; the public key is FILE.pub")
	return c
}

func runKeyGenerate(_ context.Context, out Output, f *keyGenerateFlags, _ []string) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	k, err := trust.GenerateKey(f.output)
	if err != nil {
		return err
	}
	fmt.Fprintf(out.Stdout, "key ID %s\nsecret key %s (0600: keep it on the master)\npublic key %s\n", k.ID(), f.output, f.output+trust.PubSuffix)
	return nil
}
