package testenv

import "net/http"

// FlipWriter is an http.ResponseWriter whose body arrives corrupt: the
// byte at offset At of what it writes has its bits Mask flipped.
type FlipWriter struct {
	http.ResponseWriter
	At   int64
	Mask byte
	off  int64
}

func (f *FlipWriter) Write(p []byte) (int, error) {
	if f.At >= f.off && f.At < f.off+int64(len(p)) {
		q := append([]byte(nil), p...)
		q[f.At-f.off] ^= f.Mask
		p = q
	}
	f.off += int64(len(p))
	return f.ResponseWriter.Write(p)
}
