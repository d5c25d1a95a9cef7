// Package testsign signs a medium in tests as the master does: a MANIFEST
// listing every file of a directory, and its minisign signature.
package testsign
