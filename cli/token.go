package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

type tokenFlags struct {
	dir string
}

func tokenCmd(out Output) *cobra.Command {
	f := &tokenFlags{}
	c := &cobra.Command{
		Use:   "token [flags] NODE|admin",
		Short: "print a node's (or the admin's) credential for clonecd serve: NAME:TOKEN",
		Long: `Prints NODE:TOKEN, the credential node NODE presents to clonecd serve
(clonecd token admin prints the admin's, which may do anything). A token
is HMAC-SHA256 of the name with the server's secret (DIR/auth.secret,
0600), made now if the server has not started yet; removing the secret
changes every token. A node's token lets it read the images and write its
own state and log; only the admin's pins versions (reclone --version).

Clients take it as --token, $CLONECD_TOKEN or a --credential FILE; curl
as -u NAME:TOKEN. It is a secret: keep it out of shell history.`,
		Example: `  clonecd token s001
  CLONECD_TOKEN=$(clonecd token admin) clonecd status --server https://10.0.0.1:8443
  clonecd token --dir /srv/clone_image s001 > /root/s001.cred`,
		Args: exactArgs(1, "one node name, or admin"),
		RunE: func(c *cobra.Command, args []string) error { return runToken(c.Context(), out, f, args) },
	}
	storeFlag(c.Flags(), &f.dir)
	return c
}

func runToken(_ context.Context, out Output, f *tokenFlags, args []string) error {
	name := args[0]
	if name != trust.AdminUser {
		if err := fleet.ValidName(name); err != nil {
			return UsageError("%v", err)
		}
	}
	s, err := versions.Open(f.dir)
	if err != nil {
		return err
	}
	secret, err := s.Secret()
	if err != nil {
		return err
	}
	c, err := secret.Credential(name)
	if err != nil {
		return err
	}
	fmt.Fprintln(out.Stdout, c)
	return nil
}
