package netclone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/versions"
)

// StateSource is where reclone and status read and write node states and
// ask about versions: a running server (HTTP) or its image store.
type StateSource interface {
	// Get reads a node's state; an error wrapping fs.ErrNotExist means
	// the node never reported.
	Get(ctx context.Context, node string) (fleet.State, error)
	All(ctx context.Context) ([]fleet.State, error)
	Set(ctx context.Context, st fleet.State) (fleet.State, error)
	// Assign pins version for node's next clone ("" clears); a version
	// marked bad is refused (ErrBadVersion) unless force.
	Assign(ctx context.Context, node, version string, force bool) error
	// Version describes version v ("" = the current one). A missing
	// version wraps versions.ErrNoVersion, a URL that is no clonecd
	// server ErrNotServer.
	Version(ctx context.Context, v string) (*VersionInfo, error)
	Where() string
}

// NewSource returns the HTTP source for a server URL, reached with a
// (the master's commands use the admin's credential), else the store
// source for dir.
func NewSource(serverURL, dir string, a Access) (StateSource, error) {
	if serverURL != "" {
		u, err := url.Parse(serverURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bad server URL %q (want https://HOST:PORT)", serverURL)
		}
		return &httpSource{base: strings.TrimRight(serverURL, "/"), a: a, c: a.client(15 * time.Second)}, nil
	}
	if dir == "" {
		return nil, errors.New("no server: give --server URL or --dir DIR")
	}
	s, err := versions.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := s.Exists(); err != nil {
		return nil, err
	}
	return &storeSource{store: s, nodes: s.Nodes(fleet.Limits{})}, nil
}

// storeSource reads and writes the store directly (reclone --dir); the
// node store's locks make that safe beside a running server.
type storeSource struct {
	store *versions.Store
	nodes *fleet.Store
}

func (d *storeSource) Where() string { return d.store.Dir }
func (d *storeSource) Get(_ context.Context, node string) (fleet.State, error) {
	return d.nodes.Get(node)
}
func (d *storeSource) All(context.Context) ([]fleet.State, error) { return d.nodes.All() }
func (d *storeSource) Set(_ context.Context, st fleet.State) (fleet.State, error) {
	return d.nodes.Update(st)
}
func (d *storeSource) Assign(_ context.Context, node, v string, force bool) error {
	return assign(d.store, d.nodes, node, v, force)
}
func (d *storeSource) Version(_ context.Context, v string) (*VersionInfo, error) {
	var e *versions.Entry
	var err error
	if v == "" {
		e, err = d.store.Current()
	} else {
		e, err = d.store.Get(v)
	}
	if err != nil {
		return nil, err
	}
	vi := info(e)
	return &vi, nil
}

type httpSource struct {
	base string
	a    Access
	c    *http.Client
}

func (h *httpSource) Where() string { return h.base }

// do sends a request and decodes a JSON answer into out. A non-2xx answer
// is a *StatusError.
func (h *httpSource) do(ctx context.Context, method, p string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := h.base + p
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	h.a.authorize(req)
	resp, err := h.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	if resp.StatusCode/100 != 2 {
		return statusError(method, u, resp, b)
	}
	if resp.Header.Get(ServerHeader) == "" {
		return fmt.Errorf("%s %s: %w (the answer does not come from clonecd serve)", method, u, ErrNotServer)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, u, err)
		}
	}
	return nil
}

func (h *httpSource) Get(ctx context.Context, node string) (fleet.State, error) {
	if err := fleet.ValidName(node); err != nil {
		return fleet.State{}, err
	}
	var st fleet.State
	err := h.do(ctx, http.MethodGet, "/api/nodes/"+node, nil, &st)
	return st, err
}

func (h *httpSource) All(ctx context.Context) ([]fleet.State, error) {
	var sts []fleet.State
	err := h.do(ctx, http.MethodGet, "/api/nodes", nil, &sts)
	return sts, err
}

func (h *httpSource) Set(ctx context.Context, st fleet.State) (fleet.State, error) {
	if err := fleet.ValidName(st.Node); err != nil {
		return fleet.State{}, err
	}
	b, _ := json.Marshal(st)
	var out fleet.State
	err := h.do(ctx, http.MethodPost, "/api/nodes/"+st.Node, b, &out)
	return out, err
}

func (h *httpSource) Assign(ctx context.Context, node, v string, force bool) error {
	if err := fleet.ValidName(node); err != nil {
		return err
	}
	q := ""
	if force {
		q = "?force=1"
	}
	err := h.do(ctx, http.MethodPost, "/api/nodes/"+node+"/assign"+q, []byte(v), nil)
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusConflict {
		return fmt.Errorf("%w: %s", ErrBadVersion, se.Msg)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return &versions.NoVersionError{Where: "the server " + h.base, Version: v}
	}
	return err
}

func (h *httpSource) Version(ctx context.Context, v string) (*VersionInfo, error) {
	p := "current"
	if v != "" {
		pv, err := versions.ParseVersion(v)
		if err != nil {
			return nil, err
		}
		p = pv.String()
	}
	var vi VersionInfo
	err := h.do(ctx, http.MethodGet, "/api/versions/"+p, nil, &vi)
	switch {
	case errors.Is(err, fs.ErrNotExist) && v != "":
		return nil, &versions.NoVersionError{Where: "the server " + h.base, Version: v}
	case errors.Is(err, fs.ErrNotExist):
		return nil, &versions.NoVersionError{Where: "the server " + h.base}
	case err != nil:
		return nil, err
	}
	return &vi, nil
}

// Streams reads what a running server served: its image streams, the
// image bytes it sent (HTTP and its swarm seeder) and the bytes its
// nodes sent each other (the swarm), as its fleet page shows them.
func (h *httpSource) Streams(ctx context.Context) (*StreamsView, error) {
	var ov struct {
		Streams StreamsView `json:"streams"`
	}
	if err := h.do(ctx, http.MethodGet, "/api/fleet", nil, &ov); err != nil {
		return nil, err
	}
	return &ov.Streams, nil
}
