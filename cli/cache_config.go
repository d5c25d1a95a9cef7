package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/swarm"
)

type cacheConfigFlags struct {
	origin, listen       listenFlag
	dir, maxSize         string
	originCA, originName string
	tlsCert, tlsKey      string
	noAuth               bool
}

func cacheConfigCmd(out Output) *cobra.Command {
	f := &cacheConfigFlags{}
	c := &cobra.Command{
		Use:   "cache-config [flags]",
		Short: "print the nginx configuration of a rack's image cache in front of clonecd serve",
		Long: `Prints the nginx configuration (for /etc/nginx/conf.d/clonecd.conf; Debian's
nginx-light has what it needs) of a rack's image cache: nginx listening on
--listen caches the version files (/v/VERSION/...: they never change once
published) of the server --origin in 1 MiB slices, each fetched from the
server once, and passes everything else (node states, logs) through.
Point the rack's nodes at the cache (clonecd build --server, the nodes
table's server=); its X-Cache-Status header says HIT or MISS.

Every request of a cached file is first asked of the server (a HEAD with
the node's credential, auth_request): the cache sends cached bytes only
to those the server lets read them. --no-auth drops that, and then anyone
who reaches the cache reads the image.

The server speaks HTTPS: --origin-ca is its certificate (the CERTIFICATE
block of its DIR/tls.pem, or its --tls-cert), which nginx checks under
--origin-name (a DNS name of the certificate: serve --tls-host NAME; nginx
does not match addresses). --tls-cert/--tls-key make the cache speak
HTTPS to the nodes (the server's own pair keeps the nodes' --tls-pin).`,
		Example: `  clonecd cache-config --origin master:8443 --origin-ca /etc/clonecd/master.pem --origin-name master \
      --listen 10.1.0.1:8443 --tls-cert /etc/clonecd/master.pem --tls-key /etc/clonecd/master.key > /etc/nginx/conf.d/clonecd.conf
  clonecd cache-config --origin master:8080 --listen 10.1.0.1:8080    # serve --plain-http`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runCacheConfig(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	fl.Var(&f.origin, "origin", "the server, HOST:PORT (required)")
	fl.Var(&f.listen, "listen", "where the rack's nodes reach the cache, HOST:PORT (required)")
	fl.StringVar(&f.dir, "cache-dir", "", "the cache's `DIR` (default /var/cache/nginx/clonecd)")
	fl.StringVar(&f.maxSize, "max-size", "", "the cache's size at most, nginx's `SIZE` syntax (default 20g)")
	fl.StringVar(&f.originCA, "origin-ca", "", "the server's certificate `FILE` (PEM): the cache reaches it over HTTPS and checks it")
	fl.StringVar(&f.originName, "origin-name", "", "the `NAME` the server's certificate is checked for (default: --origin's host)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "the cache's certificate `FILE` (PEM; with --tls-key): HTTPS to the nodes")
	fl.StringVar(&f.tlsKey, "tls-key", "", "the private key `FILE` (PEM) of --tls-cert")
	fl.BoolVar(&f.noAuth, "no-auth", false, "do not ask the server about each request's credential (anyone reaching the cache reads the image)")
	return c
}

func runCacheConfig(_ context.Context, out Output, f *cacheConfigFlags, _ []string) error {
	switch {
	case f.origin == "" || f.listen == "":
		return UsageError("--origin HOST:PORT and --listen HOST:PORT are required")
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return UsageError("--tls-cert and --tls-key go together")
	case f.originName != "" && f.originCA == "":
		return UsageError("--origin-name needs --origin-ca")
	}
	conf, err := swarm.CacheConfig(swarm.CacheOptions{
		Origin: string(f.origin), Listen: string(f.listen), Dir: f.dir, MaxSize: f.maxSize, Auth: !f.noAuth,
		OriginCA: f.originCA, OriginName: f.originName, Cert: f.tlsCert, Key: f.tlsKey, ServerHeader: netclone.ServerHeader,
	})
	if err != nil {
		return UsageError("%v", err)
	}
	_, err = out.Stdout.Write(conf)
	return err
}
