package swarm

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"text/template"
)

// CacheOptions describe a rack's image cache: nginx in front of the
// server (the origin), caching the version files.
type CacheOptions struct {
	Origin string // the server, host:port
	Listen string // where the rack's nodes reach the cache, host:port
	// Dir is the cache's directory; "": /var/cache/nginx/clonecd.
	Dir string
	// MaxSize bounds the cache (nginx size syntax); "": 20g.
	MaxSize string
	// Cached is the path prefix of the files that are cached (immutable
	// per version); everything else is passed through uncached. "": /v/.
	Cached string
	// Prefix, when set, makes the file a whole nginx.conf that keeps its
	// pid, logs and temporary files under Prefix and runs in the
	// foreground (nginx -p PREFIX -c PREFIX/nginx.conf), as the tests run
	// it; "": only the http-level part an admin puts in
	// /etc/nginx/conf.d/.
	Prefix string
	// User for the worker processes (only with Prefix); "": nginx's default.
	User string
	// Auth asks the origin, for every request of a cached file, whether
	// the node's credentials (its Authorization header) may read it: a
	// HEAD of the same URL (auth_request); a cached slice is sent only on
	// a 2xx, the origin's 401/403 is passed on. Without it anyone who
	// reaches the cache reads what it cached.
	Auth bool
	// OriginCA, when set, makes the cache reach the origin over HTTPS
	// (clonecd serve's default) and check its certificate against this
	// PEM file (the server's certificate: the CERTIFICATE block of
	// its DIR/tls.pem, or its --tls-cert); OriginName is the name checked
	// ("": Origin's host; nginx matches DNS names only, so a server known
	// by its address needs a --tls-host NAME in its certificate). "": the
	// origin speaks plain HTTP (serve --plain-http).
	OriginCA   string
	OriginName string
	// Cert and Key, when set, make the cache listen with HTTPS (PEM
	// files): the nodes' credentials cross the rack's network encrypted.
	// The nodes check the cache's certificate as they check the
	// server's (the cache may present the server's own certificate and
	// key: the nodes' pin then holds unchanged).
	Cert, Key string
	// ServerHeader is the header every clonecd answer carries
	// (netclone.ServerHeader): the cache's own "no swarm here" 404 carries
	// it too, so that a node reads it as "this server has no swarm", not
	// as "this is no clonecd server". "": the 404 goes without it.
	ServerHeader string
}

// CacheConfig returns the nginx configuration of a rack's cache: the
// slice module turns each request, Range or not, into aligned 1 MiB
// Range requests to the origin, each cached once (the key holds the
// slice); proxy_cache_lock makes concurrent misses of a slice wait for
// the first one instead of all going to the origin. The origin's strong
// ETags let nginx check the slices of one file belong together. Files
// outside Cached (the API, node states, logs) pass through uncached.
func CacheConfig(o CacheOptions) ([]byte, error) {
	for _, a := range []struct{ name, v string }{{"origin", o.Origin}, {"listen", o.Listen}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			return nil, fmt.Errorf("cache %s address %q: want host:port", a.name, a.v)
		}
	}
	if o.Dir == "" {
		o.Dir = "/var/cache/nginx/clonecd"
	}
	if o.MaxSize == "" {
		o.MaxSize = "20g"
	}
	if o.Cached == "" {
		o.Cached = "/v/"
	}
	if o.OriginCA != "" && o.OriginName == "" {
		o.OriginName, _, _ = net.SplitHostPort(o.Origin)
	}
	if (o.Cert == "") != (o.Key == "") {
		return nil, fmt.Errorf("cache certificate %q and key %q: give both or neither", o.Cert, o.Key)
	}
	for _, v := range []string{o.Dir, o.MaxSize, o.Cached, o.Prefix, o.User, o.OriginCA, o.OriginName, o.Cert, o.Key, o.ServerHeader} {
		if strings.ContainsAny(v, " \t\n;{}\"'$#") {
			return nil, fmt.Errorf("cache setting %q: no blanks, quotes or ;{}$#", v)
		}
	}
	scheme := "http"
	if o.OriginCA != "" {
		scheme = "https"
	}
	var b bytes.Buffer
	err := cacheTemplate.Execute(&b, struct {
		CacheOptions
		Scheme string
	}{o, scheme})
	return b.Bytes(), err
}

var cacheTemplate = template.Must(template.New("nginx").Parse(`{{if .Prefix}}{{if .User}}user {{.User}};
{{end}}worker_processes 1;
daemon off;
pid {{.Prefix}}/nginx.pid;
error_log {{.Prefix}}/error.log warn;
events { worker_connections 1024; }
http {
client_body_temp_path {{.Prefix}}/tmp/body;
proxy_temp_path {{.Prefix}}/tmp/proxy;
fastcgi_temp_path {{.Prefix}}/tmp/fastcgi;
uwsgi_temp_path {{.Prefix}}/tmp/uwsgi;
scgi_temp_path {{.Prefix}}/tmp/scgi;
access_log off;
{{end}}# clonecd: a rack's image cache in front of the server {{.Origin}}.
proxy_cache_path {{.Dir}} levels=1:2 keys_zone=clonecd:10m max_size={{.MaxSize}} inactive=30d use_temp_path=off;
upstream clonecd_origin {
    server {{.Origin}};
    keepalive 16;
}
server {
    listen {{.Listen}}{{if .Cert}} ssl{{end}};
{{- if .Cert}}
    ssl_certificate {{.Cert}};
    ssl_certificate_key {{.Key}};{{end}}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
{{- if .OriginCA}}
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate {{.OriginCA}};
    proxy_ssl_name {{.OriginName}};
    proxy_ssl_server_name on;
    proxy_ssl_session_reuse on;{{end}}
    # The version's files never change: cache them, in 1 MiB slices.
    location {{.Cached}} {
{{- if .Auth}}
        auth_request /.clonecd-auth;{{end}}
        slice 1m;
        proxy_cache clonecd;
        proxy_cache_key $uri$slice_range;
        proxy_set_header Range $slice_range;
        proxy_cache_valid 200 206 30d;
        proxy_cache_lock on;
        proxy_cache_lock_timeout 5m;
        proxy_cache_lock_age 5m;
        # HIT, MISS, ...: what a rack's admin checks (curl -I).
        add_header X-Cache-Status $upstream_cache_status always;
        proxy_pass {{.Scheme}}://clonecd_origin;
    }
{{- if .Auth}}
    location = /.clonecd-auth {
        internal;
        proxy_method HEAD;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header Range "";
        proxy_pass {{.Scheme}}://clonecd_origin$request_uri;
    }{{end}}
    # No swarm through the cache: the tracker would see every node of the
    # rack at the cache's address, and the master's seeder would send them
    # the image around the cache. On this 404 the nodes take HTTP, here.
    location /swarm/ {
{{- if .ServerHeader}}
        add_header {{.ServerHeader}} clonecd always;{{end}}
        return 404 "no swarm through a rack's cache: fetch over HTTP\n";
    }
    # The API (node states, logs, assignments): never cached.
    location / {
        proxy_cache off;
        proxy_buffering off;
        proxy_pass {{.Scheme}}://clonecd_origin;
    }
}
{{if .Prefix}}}
{{end}}`))
