package netclone

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/trust"
)

// The fleet page: plain HTML, CSS and JavaScript in web/, embedded; no
// build step, nothing fetched from elsewhere (nodes and masters are
// offline). The HTML is rendered with html/template; everything a node
// or the store supplies is fetched as JSON and put on the page as text
// (textContent), never as markup. Pages under /admin/ (access admin)
// show the actions; the others (access public) are read-only.
//
//go:embed web
var webFS embed.FS

var pages = template.Must(template.ParseFS(webFS, "web/*.html"))

// asset is a file of web/ with its ETag.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

var assets = loadAssets()

func loadAssets() map[string]asset {
	out := map[string]asset{}
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
		".svg": "image/svg+xml"}
	des, _ := fs.ReadDir(webFS, "web")
	for _, de := range des {
		ct, ok := types[path.Ext(de.Name())]
		if !ok {
			continue
		}
		b, _ := fs.ReadFile(webFS, "web/"+de.Name())
		sum := sha256.Sum256(b)
		out[de.Name()] = asset{b, ct, `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out
}

// pageHeaders keep the page to its own origin: its scripts and styles
// only, no framing, no referrer to elsewhere.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// pageData is what the templates get.
type pageData struct {
	Admin   bool   // the actions are shown (an /admin/ page)
	Who     string // who is signed in, when the server checks credentials
	Base    string // "" or "/admin": where the page's links go
	Node    string // the node page's node
	Reclone bool   // the server may reclone (serve --rsh)
}

func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, name string, d pageData) {
	if d.Admin {
		d.Base = "/admin"
		if p := trust.PrincipalOf(r.Context()); p.Role != trust.Nobody {
			d.Who = p.String()
		}
	}
	d.Reclone = len(s.o.Rsh) > 0
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, d); err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	pageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b.Bytes())
}

// wantsHTML says a browser asked: curl and scripts get the old text.
func wantsHTML(r *http.Request) bool { return strings.Contains(r.Header.Get("Accept"), "text/html") }

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	if !wantsHTML(r) {
		s.handleFile(w, r) // "clonecd image server, current version: V"
		return
	}
	s.renderPage(w, r, "index.html", pageData{})
}

func (s *Server) handleAdminIndex(w http.ResponseWriter, r *http.Request) {
	s.renderPage(w, r, "index.html", pageData{Admin: true})
}

func (s *Server) handleNodePage(w http.ResponseWriter, r *http.Request) {
	if node := s.node(w, r); node != "" {
		s.renderPage(w, r, "node.html", pageData{Node: node})
	}
}

func (s *Server) handleAdminNodePage(w http.ResponseWriter, r *http.Request) {
	if node := s.node(w, r); node != "" {
		s.renderPage(w, r, "node.html", pageData{Node: node, Admin: true})
	}
}

func (s *Server) handleAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[r.PathValue("asset")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache") // revalidated: a new binary brings new files
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// handleFleet answers the overview (the page polls it when it has no
// event stream).
func (s *Server) handleFleet(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, s.ops.overview())
}

// handleNodeset expands ?set=NODESET into node names, so that the page
// filters with the same parser as the command line.
func (s *Server) handleNodeset(w http.ResponseWriter, r *http.Request) {
	names, err := parseNodeList(r.URL.Query().Get("set"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, names)
}

// parseNodeList expands nodesets separated by spaces or commas outside
// brackets ("s[001-004] s010"), at most fleet.MaxNodeset names in all.
func parseNodeList(list string) ([]string, error) {
	names := []string{}
	seen := map[string]bool{}
	for _, f := range strings.Fields(list) {
		set, err := fleet.ParseNodeset(f)
		if err != nil {
			return nil, err
		}
		for _, n := range set {
			if err := fleet.ValidName(n); err != nil {
				return nil, err
			}
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
		if len(names) > fleet.MaxNodeset {
			return nil, fmt.Errorf("more than %d nodes", fleet.MaxNodeset)
		}
	}
	return names, nil
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	node := s.node(w, r)
	if node == "" {
		return
	}
	runs, err := s.nodes.History(node)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	if runs == nil {
		runs = []fleet.Run{}
	}
	writeJSON(w, runs)
}
