package nodesync

import (
	"crypto/sha256"
	"hash"
)

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

type hasher struct{ hash.Hash }

func newHasher() hasher { return hasher{sha256.New()} }

func (h hasher) sum() (s Sum) {
	h.Sum(s[:0])
	return s
}
