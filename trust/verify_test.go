package trust

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/clonecd/clonecd/medium"
)

// TestVerify: the good signature verifies; tampering, a wrong key, a
// damaged signature and a signature of another file or version are each
// refused with the file named and the reason.
func TestVerify(t *testing.T) {
	a, b := newKey(t), newKey(t)
	man := testManifest(t, "1.20", mediumFiles)
	sig, err := Sign(man, a)
	if err != nil {
		t.Fatal(err)
	}
	other := testManifest(t, "1.19", mediumFiles)
	sigOther, _ := Sign(other, a)
	layout := []byte(mediumFiles[medium.Layout])
	hashed := func(msg []byte, comment string) []byte {
		r := minisign.NewReader(bytes.NewReader(msg))
		r.Read(make([]byte, len(msg)+1))
		return r.SignWithComments(a.key, comment, "x")
	}
	sigB, _ := Sign(man, b)
	tampered := bytes.Replace(man, []byte(" 8 isolinux/vmlinuz"), []byte(" 9 isolinux/vmlinuz"), 1)
	if bytes.Equal(tampered, man) {
		t.Fatal("the tampering changed nothing")
	}
	all := []PublicKey{a.Public(), b.Public()}
	for _, c := range []struct {
		name     string
		manifest []byte
		sig      []byte
		keys     []PublicKey
		reason   error // nil: verifies
		words    []string
	}{
		{"good", man, sig, []PublicKey{a.Public()}, nil, nil},
		{"good, two keys trusted", man, sig, all, nil, nil},
		{"tampered manifest", tampered, sig, all, ErrBadSignature, []string{"MANIFEST: does not match its signature by key " + a.ID()}},
		{"signed by an untrusted key", man, sigB, []PublicKey{a.Public()}, ErrUnknownKey, []string{"MANIFEST.minisig: signed by key " + b.ID(), "not trusted (trusted: " + a.ID() + ")"}},
		{"no key trusted", man, sig, nil, ErrUnknownKey, []string{"trusted: none"}},
		{"empty signature", man, nil, all, ErrUnsigned, []string{"MANIFEST.minisig: empty"}},
		{"truncated signature", man, sig[:len(sig)/2], all, ErrBadSignature, []string{"MANIFEST.minisig: not a minisign signature"}},
		{"signature lost its last line", man, sig[:bytes.LastIndexByte(sig[:len(sig)-1], '\n')+1], all, ErrBadSignature, []string{"MANIFEST.minisig: not a minisign signature"}},
		{"not a signature", man, []byte("hello\n"), all, ErrBadSignature, []string{"not a minisign signature"}},
		{"huge signature", man, bytes.Repeat([]byte("A"), maxSignature+1), all, ErrBadSignature, []string{"larger than"}},
		{"trusted comment changed", man, bytes.Replace(sig, []byte("version 1.20"), []byte("version 1.21"), 1), all, ErrBadSignature, []string{"trusted comment was changed"}},
		{"signature of another version", man, sigOther, all, ErrBadSignature, []string{"MANIFEST: does not match", "a signature of version 1.19"}},
		{"clonecd signature of the layout", man, hashed(layout, "clonecd node.sfdisk version 1.20"), all, ErrOtherFile, []string{"MANIFEST.minisig: a signature of node.sfdisk"}},
		{"minisign signature of the layout", man, hashed(layout, "timestamp:1796153016\tfile:node.sfdisk\thashed"), all, ErrOtherFile, []string{"a signature of node.sfdisk"}},
		{"same bytes, signed as another file", man, hashed(man, "clonecd ks.cfg version 1.20"), all, ErrOtherFile, []string{"a signature of ks.cfg"}},
		{"comment names another version", man, hashed(man, "clonecd MANIFEST version 1.19"), all, ErrOtherFile, []string{"signature of version 1.19", "MANIFEST is version 1.20"}},
		{"legacy (unhashed) signature", man, minisign.SignWithComments(a.key, man, TrustedComment("1.20"), "x"), all, nil, nil},
		{"custom trusted comment", man, hashed(man, "release by the admin"), all, nil, nil},
	} {
		k, err := Verify(c.manifest, c.sig, c.keys)
		wantErr(t, "Verify("+c.name+")", err, c.reason, c.words...)
		if c.reason == nil && k.ID() != a.ID() {
			t.Errorf("Verify(%s) = key %s; want %s", c.name, k.ID(), a.ID())
		}
	}

	// A validly signed manifest that does not parse is refused by the
	// parser, with its line (Sign itself refuses to sign it).
	bad := append(bytes.Clone(man), "frobnicate 1\n"...)
	_, err = Verify(bad, hashed(bad, TrustedComment("1.20")), all)
	if le := (*medium.LineError)(nil); !errors.As(err, &le) || le.Line != 8 {
		t.Errorf("Verify(signed, malformed) = %v; want a LineError at line 8", err)
	}
	if _, err := Sign(bad, a); err == nil {
		t.Errorf("Sign(malformed manifest) succeeded")
	}
}

func TestLoadVerifier(t *testing.T) {
	a, b := newKey(t), newKey(t)
	dir := t.TempDir()
	for _, k := range []*SecretKey{a, b} {
		txt, _ := k.Public().MarshalText()
		os.WriteFile(filepath.Join(dir, k.Public().FileName()), txt, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "README"), []byte("not a key"), 0o644)
	os.Mkdir(filepath.Join(dir, "old.pub"), 0o755) // a directory, not a key
	odd := filepath.Join(t.TempDir(), "trust[1]*") // glob characters in the name
	os.Mkdir(odd, 0o755)
	pa0, _ := a.Public().MarshalText()
	os.WriteFile(filepath.Join(odd, "a.pub"), pa0, 0o644)
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "x.pub"), []byte("garbage"), 0o644)
	clash := t.TempDir()
	pa, _ := a.Public().MarshalText()
	os.WriteFile(filepath.Join(clash, "a.pub"), pa, 0o644)
	other := newKey(t).Public()
	other.id = a.key.ID() // another key under a's ID
	po, _ := other.MarshalText()
	os.WriteFile(filepath.Join(clash, "b.pub"), po, 0o644)

	for _, c := range []struct {
		name  string
		paths []string
		ids   []string
		err   string
	}{
		{"directory", []string{dir}, []string{a.ID(), b.ID()}, ""},
		{"file", []string{a.file + PubSuffix}, []string{a.ID()}, ""},
		{"same key twice", []string{a.file + PubSuffix, dir}, []string{a.ID(), b.ID()}, ""},
		{"empty directory", []string{t.TempDir()}, nil, ""},
		{"directory named with glob characters", []string{odd}, []string{a.ID()}, ""},
		{"missing", []string{filepath.Join(dir, "nope.pub")}, nil, "nope.pub"},
		{"malformed key", []string{bad}, nil, "x.pub: not a minisign public key"},
		{"two keys, one ID", []string{clash}, nil, "b.pub: key ID " + a.ID() + " is also the ID of another key"},
	} {
		v, err := LoadVerifier(c.paths...)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("LoadVerifier(%s) = %v; want an error saying %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("LoadVerifier(%s) = %v", c.name, err)
			continue
		}
		var ids []string
		for _, k := range v.Keys() {
			ids = append(ids, k.ID())
		}
		slices.Sort(ids)
		if want := slices.Sorted(slices.Values(c.ids)); !slices.Equal(ids, want) {
			t.Errorf("LoadVerifier(%s) trusts %v; want %v", c.name, ids, c.ids)
		}
	}

	v, err := LoadTrustDir(filepath.Join(dir, "absent"))
	if err != nil || len(v.Keys()) != 0 {
		t.Errorf("LoadTrustDir(absent) = %v, %v; want no key, no error", v.Keys(), err)
	}
	if _, err := LoadTrustDir(bad); err == nil {
		t.Errorf("LoadTrustDir(malformed key) succeeded")
	}
}

func TestSignatureKeyID(t *testing.T) {
	k := newKey(t)
	sig, err := Sign(testManifest(t, "1.20", mediumFiles), k)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := SignatureKeyID(sig); err != nil || id != k.ID() {
		t.Errorf("SignatureKeyID = %q, %v; want %s", id, err, k.ID())
	}
	if _, err := SignatureKeyID([]byte("untrusted comment: x\nnot base64\n")); !errors.Is(err, ErrBadSignature) {
		t.Errorf("SignatureKeyID(garbage) = %v; want ErrBadSignature", err)
	}
}
