package trust

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/scrypt"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
)

func TestGenerateKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "clonecd.key")
	k, err := GenerateKey(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file string
		mode os.FileMode
	}{{file, 0o600}, {file + PubSuffix, 0o644}} {
		st, err := os.Stat(c.file)
		if err != nil || st.Mode().Perm() != c.mode {
			t.Errorf("GenerateKey: %s: %v, %v; want mode %04o", c.file, st.Mode(), err, c.mode)
		}
	}
	pub, err := LoadPublicKey(file + PubSuffix)
	if err != nil || !pub.Equal(k.Public()) {
		t.Errorf("LoadPublicKey(FILE.pub) = %v, %v; want the generated key %v", pub, err, k.Public())
	}
	b, _ := os.ReadFile(file + PubSuffix)
	if want := "untrusted comment: minisign public key " + k.ID() + "\n"; !strings.HasPrefix(string(b), want) {
		t.Errorf("FILE.pub = %q; want it to start %q", b, want)
	}
	sec, err := LoadSecretKey(file, nil)
	if err != nil || sec.ID() != k.ID() {
		t.Errorf("LoadSecretKey(FILE) = %v, %v; want key %s", sec, err, k.ID())
	}

	// Neither file is replaced, and the refusal comes before any write.
	for _, existing := range []string{file, file + PubSuffix} {
		dir := t.TempDir()
		other := filepath.Join(dir, "clonecd.key")
		os.WriteFile(strings.Replace(existing, file, other, 1), []byte("keep"), 0o600)
		if _, err := GenerateKey(other); err == nil || !strings.Contains(err.Error(), "exists") {
			t.Errorf("GenerateKey with %s present = %v; want a refusal", filepath.Base(existing), err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("GenerateKey refused but left %d files", len(ents))
		}
	}
}

func TestLoadSecretKeyRefusals(t *testing.T) {
	k := newKey(t)
	dir := t.TempDir()
	good, _ := k.key.MarshalText()
	for _, c := range []struct {
		name string
		data []byte
		mode os.FileMode
		want string
	}{
		{"readable by others", good, 0o644, "chmod 600"},
		{"a public key", []byte("untrusted comment: x\n" + k.Public().String() + "\n"), 0o600, "not a minisign secret key"},
		{"truncated", good[:len(good)/2], 0o600, "not a minisign secret key"},
		{"empty", nil, 0o600, "not a minisign secret key"},
	} {
		f := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
		os.WriteFile(f, c.data, 0o600)
		os.Chmod(f, c.mode)
		if _, err := LoadSecretKey(f, nil); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), f) {
			t.Errorf("LoadSecretKey(%s) = %v; want an error naming the file and saying %q", c.name, err, c.want)
		}
	}
}

func TestParsePublicKey(t *testing.T) {
	k := newKey(t).Public()
	file, _ := k.MarshalText()
	for _, c := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"file", string(file), true},
		{"file with CRLF", strings.ReplaceAll(string(file), "\n", "\r\n"), true},
		{"bare key (minisign -P)", k.String(), true},
		{"empty", "", false},
		{"comment only", "untrusted comment: minisign public key 1\n", false},
		{"two keys", string(file) + k.String() + "\n", false},
		{"short", k.String()[:40], false},
		{"not base64", strings.Repeat("!", 56), false},
		{"other algorithm", base64.StdEncoding.EncodeToString(append([]byte("Xx"), make([]byte, 40)...)), false},
	} {
		got, err := ParsePublicKey([]byte(c.in), "k.pub")
		if c.ok != (err == nil) || c.ok && !got.Equal(k) {
			t.Errorf("ParsePublicKey(%s) = %v, %v; want ok=%v", c.name, got, err, c.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "k.pub: ") {
			t.Errorf("ParsePublicKey(%s) = %v; want the error to name k.pub", c.name, err)
		}
	}
}

// TestMinisignVerifiesOurs: Debian's minisign accepts what we sign, with
// a key we made; and signs with our secret key for us to verify.
func TestMinisignVerifiesOurs(t *testing.T) {
	testenv.NeedTools(t, "minisign")
	dir := t.TempDir()
	key, err := GenerateKey(filepath.Join(dir, "clonecd.key"))
	if err != nil {
		t.Fatal(err)
	}
	man := filepath.Join(dir, medium.ManifestFile)
	os.WriteFile(man, testManifest(t, "1.20", mediumFiles), 0o644)
	if _, err := SignDir(dir, key); err != nil {
		t.Fatal(err)
	}
	for _, prehashed := range []string{"-V", "-VH"} {
		out, err := run("", "minisign", prehashed+"m", man, "-p", key.file+PubSuffix)
		if err != nil || !strings.Contains(out, "Trusted comment: clonecd MANIFEST version 1.20") {
			t.Errorf("minisign %s of our signature: %v\n%s", prehashed, err, out)
		}
	}
	// The same check fails on a changed manifest: the test can fail.
	os.WriteFile(man, testManifest(t, "1.21", mediumFiles), 0o644)
	if out, err := run("", "minisign", "-Vm", man, "-p", key.file+PubSuffix); err == nil {
		t.Errorf("minisign -V of a changed manifest succeeded:\n%s", out)
	}
	// minisign signs with our secret key (it is minisign's format).
	if out, err := run("", "minisign", "-S", "-s", key.file, "-m", man); err != nil {
		t.Fatalf("minisign -S with our key: %v\n%s", err, out)
	}
	m, _ := os.ReadFile(man)
	sig, _ := os.ReadFile(man + ".minisig")
	if k, err := Verify(m, sig, []PublicKey{key.Public()}); err != nil || k.ID() != key.ID() {
		t.Errorf("Verify(minisign -S with our key) = %v, %v", k.ID(), err)
	}
}

// TestWeVerifyMinisign: signatures made by `minisign -S` with a key from
// `minisign -G -W` verify, in every form minisign writes; and the key's
// ID is the one minisign printed.
func TestWeVerifyMinisign(t *testing.T) {
	testenv.NeedTools(t, "minisign")
	dir := t.TempDir()
	pubFile, secFile := filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key")
	if out, err := run("", "minisign", "-G", "-W", "-p", pubFile, "-s", secFile); err != nil {
		t.Fatalf("minisign -G -W: %v\n%s", err, out)
	}
	pub, err := LoadPublicKey(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	comment, _ := os.ReadFile(pubFile)
	if want := "minisign public key " + pub.ID() + "\n"; !strings.Contains(string(comment), want) {
		t.Errorf("key ID %s; minisign's .pub says %q", pub.ID(), comment)
	}
	man := filepath.Join(dir, medium.ManifestFile)
	manifest := testManifest(t, "1.20", mediumFiles)
	os.WriteFile(man, manifest, 0o644)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"default (hashed)", nil},
		{"legacy", []string{"-l"}},
		{"own trusted comment", []string{"-t", "release 1.20 by the admin"}},
	} {
		if out, err := run("", "minisign", append([]string{"-S", "-s", secFile, "-m", man}, c.args...)...); err != nil {
			t.Fatalf("minisign -S %s: %v\n%s", c.name, err, out)
		}
		sig, _ := os.ReadFile(man + ".minisig")
		k, err := Verify(manifest, sig, []PublicKey{pub})
		if err != nil || k.ID() != pub.ID() {
			t.Errorf("Verify(minisign -S %s) = %s, %v; want key %s", c.name, k.ID(), err, pub.ID())
		}
		_, err = Verify(testManifest(t, "1.21", mediumFiles), sig, []PublicKey{pub})
		wantErr(t, "Verify(another manifest, minisign -S "+c.name+")", err, ErrBadSignature, "MANIFEST: does not match")
	}
	// minisign's unencrypted secret key signs for us, and minisign
	// verifies that.
	sec, err := LoadSecretKey(secFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignDir(dir, sec); err != nil {
		t.Fatal(err)
	}
	if out, err := run("", "minisign", "-Vm", man, "-p", pubFile); err != nil {
		t.Errorf("minisign -V of our signature with its key: %v\n%s", err, out)
	}
}

// TestMinisignOtherFile: minisign's signature of node.sfdisk put beside
// MANIFEST is refused as a signature of node.sfdisk.
func TestMinisignOtherFile(t *testing.T) {
	testenv.NeedTools(t, "minisign")
	dir := t.TempDir()
	pubFile, secFile := filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key")
	if out, err := run("", "minisign", "-G", "-W", "-p", pubFile, "-s", secFile); err != nil {
		t.Fatalf("minisign -G -W: %v\n%s", err, out)
	}
	layout := filepath.Join(dir, medium.Layout)
	os.WriteFile(layout, []byte(mediumFiles[medium.Layout]), 0o644)
	if out, err := run("", "minisign", "-S", "-s", secFile, "-m", layout); err != nil {
		t.Fatalf("minisign -S: %v\n%s", err, out)
	}
	pub, _ := LoadPublicKey(pubFile)
	sig, _ := os.ReadFile(layout + ".minisig")
	_, err := Verify(testManifest(t, "1.20", mediumFiles), sig, []PublicKey{pub})
	wantErr(t, "Verify(MANIFEST, node.sfdisk's signature)", err, ErrOtherFile, "MANIFEST.minisig: a signature of node.sfdisk")
}

// TestEncryptedKey: a passphrase-protected key in minisign's format (made
// here with cheap scrypt parameters; minisign's own take seconds and
// 1 GiB) signs with the passphrase and is refused without it. minisign
// reads the same key, which shows the format is right.
func TestEncryptedKey(t *testing.T) {
	k := newKey(t)
	file := filepath.Join(t.TempDir(), "enc.key")
	os.WriteFile(file, encryptCheap(t, k, "correct horse"), 0o600)
	pass := func(string) (string, error) { return "correct horse", nil }

	_, err := LoadSecretKey(file, nil)
	if err == nil || !strings.Contains(err.Error(), "encrypted with a passphrase") {
		t.Errorf("LoadSecretKey(encrypted, no passphrase) = %v; want a refusal saying why", err)
	}
	if _, err := LoadSecretKey(file, func(string) (string, error) { return "wrong", nil }); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Errorf("LoadSecretKey(encrypted, wrong passphrase) = %v", err)
	}
	if _, err := LoadSecretKey(file, func(string) (string, error) { return "", errors.New("no terminal") }); err == nil || !strings.Contains(err.Error(), "no terminal") {
		t.Errorf("LoadSecretKey(encrypted, failing passphrase) = %v", err)
	}
	sec, err := LoadSecretKey(file, pass)
	if err != nil || sec.ID() != k.ID() {
		t.Fatalf("LoadSecretKey(encrypted, passphrase) = %v, %v", sec, err)
	}
	manifest := testManifest(t, "1.20", mediumFiles)
	sig, err := Sign(manifest, sec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(manifest, sig, []PublicKey{k.Public()}); err != nil {
		t.Errorf("Verify(signed with the decrypted key) = %v", err)
	}

	testenv.NeedTools(t, "minisign")
	dir := filepath.Dir(file)
	man := filepath.Join(dir, medium.ManifestFile)
	os.WriteFile(man, manifest, 0o644)
	if out, err := run("correct horse\n", "minisign", "-S", "-s", file, "-m", man); err != nil {
		t.Fatalf("minisign -S with our encrypted key: %v\n%s", err, out)
	}
	sig, _ = os.ReadFile(man + ".minisig")
	if _, err := Verify(manifest, sig, []PublicKey{k.Public()}); err != nil {
		t.Errorf("Verify(minisign -S with the encrypted key) = %v", err)
	}
}

// encryptCheap writes k in minisign's encrypted format: scrypt with the
// smallest parameters libsodium takes (opslimit 2^15, memlimit 16 MiB:
// N=1024, r=8, p=1), keystream XOR (key number, key, BLAKE2b-256 check).
func encryptCheap(t *testing.T, k *SecretKey, pass string) []byte {
	plain, _ := k.key.MarshalText()
	raw, err := base64.StdEncoding.DecodeString(strings.SplitN(string(plain), "\n", 2)[1])
	if err != nil || len(raw) != 158 {
		t.Fatalf("unencrypted key: %v, %d bytes", err, len(raw))
	}
	b := bytes.Clone(raw)
	binary.LittleEndian.PutUint16(b[2:], 0x6353) // "Sc"
	rand.Read(b[6:38])
	binary.LittleEndian.PutUint64(b[38:], 1<<15)
	binary.LittleEndian.PutUint64(b[46:], 16<<20)
	chk := blake2b.Sum256(append(binary.LittleEndian.AppendUint16(nil, minisign.EdDSA), raw[54:126]...))
	copy(b[126:], chk[:])
	stream, err := scrypt.Key([]byte(pass), b[6:38], 1024, 8, 1, 104)
	if err != nil {
		t.Fatal(err)
	}
	for i := range stream {
		b[54+i] ^= stream[i]
	}
	return []byte("untrusted comment: minisign encrypted secret key\n" + base64.StdEncoding.EncodeToString(b) + "\n")
}
