package trust

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Role is what a principal may do.
type Role int

// The roles, weakest first.
const (
	Nobody    Role = iota // no valid credential
	NodeRole              // a node: reads, and writes its own state and log
	AdminRole             // the admin: everything (assign, any node's state)
)

// Principal is who made a request.
type Principal struct {
	Role Role
	Node string // the node's name, for NodeRole
}

func (p Principal) String() string {
	switch p.Role {
	case NodeRole:
		return "node " + p.Node
	case AdminRole:
		return AdminUser
	}
	return "nobody"
}

// Auth authenticates requests against a server's Secret.
type Auth struct {
	secret *Secret
}

// NewAuth checks requests against s.
func NewAuth(s *Secret) *Auth { return &Auth{secret: s} }

// Authenticate returns who made r: the user of a valid credential in
// "Authorization: Basic" (user NAME or admin, password the token) or
// "Authorization: Bearer NAME:TOKEN"; Nobody without one, or with a wrong
// one. Tokens are compared in constant time.
func (a *Auth) Authenticate(r *http.Request) Principal {
	user, token, ok := r.BasicAuth()
	if !ok {
		h := r.Header.Get("Authorization")
		scheme, cred, found := strings.Cut(h, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") {
			return Principal{}
		}
		c, err := ParseCredential(cred)
		if err != nil {
			return Principal{}
		}
		user, token = c.User, c.Token
	}
	want, err := a.secret.Credential(user)
	if err != nil || subtle.ConstantTimeCompare([]byte(token), []byte(want.Token)) != 1 {
		return Principal{}
	}
	if user == AdminUser {
		return Principal{Role: AdminRole}
	}
	return Principal{Role: NodeRole, Node: user}
}

type principalKey struct{}

// PrincipalOf returns the principal a Require middleware put in the
// request's context (Nobody outside one).
func PrincipalOf(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// Realm is the realm the 401 answers name.
const Realm = "clonecd"

// require serves h when allow says so: 401 (with WWW-Authenticate) for
// Nobody, 403 for a principal that may not.
func (a *Auth) require(h http.Handler, allow func(Principal, *http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := a.Authenticate(r)
		if p.Role == Nobody {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
			http.Error(w, "authentication required: a node's or the admin's credential (clonecd token NAME)", http.StatusUnauthorized)
			return
		}
		if !allow(p, r) {
			http.Error(w, p.String()+" may not do this", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// RequireReader serves h to any node and the admin (the image, ks.cfg,
// nodes, clonecd.conf, the manifest, state reads).
func (a *Auth) RequireReader(h http.Handler) http.Handler {
	return a.require(h, func(Principal, *http.Request) bool { return true })
}

// RequireAdmin serves h to the admin only (assign, any admin action).
func (a *Auth) RequireAdmin(h http.Handler) http.Handler {
	return a.require(h, func(p Principal, _ *http.Request) bool { return p.Role == AdminRole })
}

// RequireNode serves h to the node that node(r) names (its own state and
// log) and to the admin; another node gets 403.
func (a *Auth) RequireNode(node func(*http.Request) string, h http.Handler) http.Handler {
	return a.require(h, func(p Principal, r *http.Request) bool {
		return p.Role == AdminRole || p.Role == NodeRole && p.Node == node(r)
	})
}

// Transport returns a RoundTripper that presents c (HTTP Basic) on every
// request to host (as in URL.Host) and on no other: a redirect elsewhere
// does not carry the token. base nil means http.DefaultTransport.
func (c Credential) Transport(base http.RoundTripper, host string) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &authTransport{base: base, host: host, c: c}
}

type authTransport struct {
	base http.RoundTripper
	host string
	c    Credential
}

func (t *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != t.host || r.Header.Get("Authorization") != "" {
		return t.base.RoundTrip(r)
	}
	r = r.Clone(r.Context()) // a RoundTripper must not change the request
	r.SetBasicAuth(t.c.User, t.c.Token)
	return t.base.RoundTrip(r)
}
