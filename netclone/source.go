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
	"os"
	"path/filepath"
	"strings"
	"time"
)

// StateSource is where reclone and status read and write node states: a
// running server (HTTP) or its directory.
type StateSource interface {
	Get(ctx context.Context, node string) (State, error) // fs.ErrNotExist if none
	All(ctx context.Context) ([]State, error)
	Set(ctx context.Context, st State) (State, error)
	Assign(ctx context.Context, node, version string) error
	Current(ctx context.Context) (string, error) // the version served
	ImageSize(ctx context.Context) (int64, error)
	Where() string
}

// NewSource returns the HTTP source for a server URL, else the directory
// source for dir.
func NewSource(serverURL, dir string) (StateSource, error) {
	if serverURL != "" {
		u, err := url.Parse(serverURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bad server URL %q (want http://HOST:PORT)", serverURL)
		}
		return &httpSource{base: strings.TrimRight(serverURL, "/"), c: &http.Client{Timeout: 15 * time.Second}}, nil
	}
	if dir == "" {
		return nil, errors.New("no server: give --server URL or --dir DIR")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("image directory %s: not a directory", dir)
	}
	return dirSource(dir), nil
}

type dirSource string

func (d dirSource) Where() string { return string(d) }
func (d dirSource) Get(_ context.Context, node string) (State, error) {
	return ReadState(string(d), node)
}
func (d dirSource) All(context.Context) ([]State, error) { return ReadStates(string(d)) }
func (d dirSource) Set(_ context.Context, st State) (State, error) {
	return WriteState(string(d), st)
}
func (d dirSource) Assign(_ context.Context, node, v string) error {
	return Assign(string(d), node, v)
}
func (d dirSource) Current(context.Context) (string, error) {
	return ReadVersion(CurrentDir(string(d)))
}
func (d dirSource) ImageSize(context.Context) (int64, error) {
	st, err := os.Stat(filepath.Join(CurrentDir(string(d)), ImageFile))
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

type httpSource struct {
	base string
	c    *http.Client
}

func (h *httpSource) Where() string { return h.base }

func (h *httpSource) do(ctx context.Context, method, p string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+p, rd)
	if err != nil {
		return err
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, h.base+p, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s %s: %w", method, h.base+p, fs.ErrNotExist)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, h.base+p, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if s, ok := out.(*string); ok {
			*s = string(b)
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, h.base+p, err)
		}
	}
	return nil
}

func (h *httpSource) Get(ctx context.Context, node string) (State, error) {
	var st State
	err := h.do(ctx, http.MethodGet, "/api/nodes/"+url.PathEscape(node), nil, &st)
	return st, err
}

func (h *httpSource) All(ctx context.Context) ([]State, error) {
	var sts []State
	err := h.do(ctx, http.MethodGet, "/api/nodes", nil, &sts)
	return sts, err
}

func (h *httpSource) Set(ctx context.Context, st State) (State, error) {
	b, _ := json.Marshal(st)
	var out State
	err := h.do(ctx, http.MethodPost, "/api/nodes/"+url.PathEscape(st.Node), b, &out)
	return out, err
}

func (h *httpSource) Assign(ctx context.Context, node, v string) error {
	return h.do(ctx, http.MethodPost, "/api/nodes/"+url.PathEscape(node)+"/assign", []byte(v), nil)
}

func (h *httpSource) Current(ctx context.Context) (string, error) {
	var s string
	err := h.do(ctx, http.MethodGet, "/CLONE_CD_VERSION", nil, &s)
	return strings.TrimSpace(s), err
}

func (h *httpSource) ImageSize(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, h.base+"/"+ImageFile, nil)
	if err != nil {
		return 0, err
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HEAD %s/%s: %s", h.base, ImageFile, resp.Status)
	}
	return resp.ContentLength, nil
}
