package trust

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	"aead.dev/minisign"

	"github.com/clonecd/clonecd/medium"
)

// fuzzKey is a fixed key (ed25519 from a fixed seed), so that the
// committed seeds under testdata/fuzz hold a valid signature.
func fuzzKey(t testing.TB) *SecretKey {
	_, priv, err := minisign.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return &SecretKey{key: priv, file: "fuzz.key"}
}

func FuzzParsePublicKey(f *testing.F) {
	txt, _ := fuzzKey(f).Public().MarshalText()
	f.Add(txt)
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePublicKey(b, "k.pub")
		if err != nil {
			return
		}
		again, _ := k.MarshalText()
		if k2, err := ParsePublicKey(again, "k.pub"); err != nil || !k2.Equal(k) {
			t.Errorf("ParsePublicKey(MarshalText(%v)) = %v, %v", k, k2, err)
		}
	})
}

// FuzzVerify: no signature text panics the verifier, every refusal is an
// *Error or the manifest's *LineError, and only the fixed key's
// signature of this manifest verifies.
func FuzzVerify(f *testing.F) {
	key := fuzzKey(f)
	man := testManifest(f, "1.20", mediumFiles)
	sig, err := Sign(man, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sig)
	f.Fuzz(func(t *testing.T, sig []byte) {
		k, err := Verify(man, sig, []PublicKey{key.Public()})
		if err == nil {
			if !k.Equal(key.Public()) {
				t.Errorf("Verify = key %s", k.ID())
			}
			return
		}
		var te *Error
		var le *medium.LineError
		if !errors.As(err, &te) && !errors.As(err, &le) {
			t.Errorf("Verify = %T %v; want an *Error", err, err)
		}
	})
}

func FuzzParsePins(f *testing.F) {
	f.Add("sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
	f.Fuzz(func(t *testing.T, s string) {
		pins, err := ParsePins(s)
		if err == nil && len(pins) == 0 {
			t.Errorf("ParsePins(%q) = no pin, no error", s)
		}
	})
}

// FuzzAuthenticate: no Authorization header panics Authenticate, and none
// but the derived tokens authenticates.
func FuzzAuthenticate(f *testing.F) {
	var s Secret
	copy(s.b[:], bytes.Repeat([]byte{9}, 32))
	c, _ := s.Credential("s001")
	f.Add("Bearer " + c.String())
	f.Add("Basic czAwMTp4")
	a := NewAuth(&s)
	f.Fuzz(func(t *testing.T, h string) {
		r, _ := http.NewRequest("GET", "http://x/", nil)
		r.Header.Set("Authorization", h)
		p := a.Authenticate(r)
		if p.Role == Nobody {
			return
		}
		user, token, ok := r.BasicAuth()
		if !ok {
			cred, err := ParseCredential(h[len("Bearer "):])
			if err != nil {
				t.Fatalf("Authenticate(%q) = %v from an unparsable credential", h, p)
			}
			user, token = cred.User, cred.Token
		}
		if want, err := s.Credential(user); err != nil || want.Token != token {
			t.Errorf("Authenticate(%q) = %v with a token that is not %s's", h, p, user)
		}
	})
}
