package trust

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/clonecd/clonecd/medium"
)

func TestReadManifest(t *testing.T) {
	a, b := newKey(t), newKey(t)
	trustA, _ := NewVerifier(a.Public())
	trustB, _ := NewVerifier(b.Public())
	without := func(names ...string) fstest.MapFS {
		fsys := testMedium(t, a)
		for _, n := range names {
			delete(fsys, n)
		}
		return fsys
	}
	with := func(name, data string) fstest.MapFS {
		fsys := testMedium(t, a)
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
		return fsys
	}
	for _, c := range []struct {
		name   string
		v      *Verifier
		fsys   fstest.MapFS
		status string
		noMan  bool  // no manifest returned (and no error)
		reason error // errors.Is; nil with words: a plain error
		words  []string
	}{
		{"signed, trusted", trustA, testMedium(t, a), "signed by key " + a.ID(), false, nil, nil},
		{"signed, no key trusted", nil, testMedium(t, a), Unsigned, false, nil, nil},
		{"signed, empty trust set", &Verifier{}, testMedium(t, a), Unsigned, false, nil, nil},
		{"no manifest, no key trusted", nil, without(medium.ManifestFile, medium.SignatureFile), Unsigned, true, nil, nil},
		{"signed by another key", trustB, testMedium(t, a), "", false, ErrUnknownKey, []string{"MANIFEST.minisig: signed by key " + a.ID()}},
		{"no manifest", trustA, without(medium.ManifestFile, medium.SignatureFile), "", false, ErrUnsigned, []string{"MANIFEST: missing", "--key"}},
		{"no signature", trustA, without(medium.SignatureFile), "", false, ErrUnsigned, []string{"MANIFEST.minisig: missing"}},
		{"manifest changed", trustA, with(medium.ManifestFile, string(testManifest(t, "1.20", map[string]string{"node.cpio.gz": "evil"}))), "", false, ErrBadSignature, []string{"MANIFEST: does not match"}},
		{"version file differs", trustA, with(medium.Version, "1.21\n"), "", false, nil, []string{`CLONE_CD_VERSION says "1.21", but MANIFEST is for version 1.20`}},
		{"version file differs, unsigned", nil, with(medium.Version, "1.19\n"), "", false, nil, []string{"CLONE_CD_VERSION says"}},
		{"no version file", trustA, without(medium.Version), "", false, fs.ErrNotExist, []string{"CLONE_CD_VERSION"}},
		{"malformed manifest, unsigned", nil, with(medium.ManifestFile, "clonecd-manifest 1\n"), "", false, nil, []string{"MANIFEST: line 1"}},
	} {
		m, st, err := c.v.ReadManifest(c.fsys)
		what := "ReadManifest(" + c.name + ")"
		if c.reason == nil && c.words == nil {
			if err != nil || st.String() != c.status || (m == nil) != c.noMan {
				t.Errorf("%s = %v, %q, %v; want status %q", what, m, st, err, c.status)
			}
			if m != nil && m.Version != "1.20" {
				t.Errorf("%s: version %q; want 1.20", what, m.Version)
			}
			continue
		}
		if m != nil || err == nil {
			t.Errorf("%s = %v, %v; want an error", what, m, err)
			continue
		}
		if c.reason != nil {
			wantErr(t, what, err, c.reason, c.words...)
		}
		for _, w := range c.words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s = %q; want it to say %q", what, err, w)
			}
		}
	}
}

// TestReadFile: each file is checked against the signed manifest before
// use; a file the manifest does not list is missing (so optional files
// stay optional) and a listed file that is missing is not.
func TestReadFile(t *testing.T) {
	a := newKey(t)
	v, _ := NewVerifier(a.Public())
	fsys := testMedium(t, a)
	m, _, err := v.ReadManifest(fsys)
	if err != nil {
		t.Fatal(err)
	}
	fsys[medium.Nodes] = &fstest.MapFile{Data: []byte("52:54:00:00:00:01 evil\n")} // added after signing
	changed := testMedium(t, a)
	changed[medium.Kickstart] = &fstest.MapFile{Data: []byte("%post\necho HI\n%end\n")}
	longer := testMedium(t, a)
	longer[medium.Layout] = &fstest.MapFile{Data: []byte(mediumFiles[medium.Layout] + "x")}
	missing := testMedium(t, a)
	delete(missing, medium.Kernel)
	for _, c := range []struct {
		name     string
		fsys     fs.FS
		m        *medium.Manifest
		file     string
		notExist bool   // errors.Is(err, fs.ErrNotExist)
		err      string // "": no error
	}{
		{"listed, same", fsys, m, medium.Layout, false, ""},
		{"not listed, present", fsys, m, medium.Nodes, true, "nodes: not in the manifest"},
		{"not listed, absent", fsys, m, medium.Conf, true, "clonecd.conf: not in the manifest"},
		{"listed, changed", changed, m, medium.Kickstart, false, "ks.cfg: sha256"},
		{"listed, longer", longer, m, medium.Layout, false, "node.sfdisk: larger than the 21 bytes MANIFEST says"},
		{"listed, missing", missing, m, medium.Kernel, false, "isolinux/vmlinuz: listed in MANIFEST but missing"},
		{"no manifest", fsys, nil, medium.Nodes, false, ""},
		{"no manifest, absent", fsys, nil, medium.Conf, true, "clonecd.conf"},
	} {
		what := "ReadFile(" + c.name + ")"
		b, err := ReadFile(c.fsys, c.m, c.file)
		if c.err == "" {
			if err != nil || string(b) != string(c.fsys.(fstest.MapFS)[c.file].Data) {
				t.Errorf("%s = %q, %v; want the file", what, b, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), c.err) || errors.Is(err, fs.ErrNotExist) != c.notExist {
			t.Errorf("%s = %v; want an error saying %q, fs.ErrNotExist %v", what, err, c.err, c.notExist)
		}

		// Open agrees, the content checked when EOF comes.
		rc, err := Open(c.fsys, c.m, c.file)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if (err == nil) != (c.err == "") || err != nil && errors.Is(err, fs.ErrNotExist) != c.notExist {
			t.Errorf("Open+ReadAll(%s) = %v; want error %v", c.name, err, c.err != "")
		}

		// And so does the medium seen through VerifiedFS, Stat included.
		vfs := VerifiedFS(c.fsys, c.m)
		_, err = fs.ReadFile(vfs, c.file)
		if (err == nil) != (c.err == "") || err != nil && (errors.Is(err, fs.ErrNotExist) != c.notExist || !strings.Contains(err.Error(), c.file)) {
			t.Errorf("fs.ReadFile(VerifiedFS, %s) = %v; want error %v naming %s", c.name, err, c.err != "", c.file)
		}
		if _, err := fs.Stat(vfs, c.file); err != nil && errors.Is(err, fs.ErrNotExist) != c.notExist {
			t.Errorf("fs.Stat(VerifiedFS, %s) = %v; want fs.ErrNotExist %v", c.name, err, c.notExist)
		}
	}
}
