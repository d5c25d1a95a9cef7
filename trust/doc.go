// Package trust owns what makes a clone trustworthy: the master's signing
// key and the signature of a version's manifest, the credentials of an
// authenticated server, and the server's TLS certificate and its pin.
// The threat model is docs/trust.md.
//
// # Signed versions
//
// Keys and signatures are minisign's (ed25519; aead.dev/minisign reads
// and writes them), so an admin checks any signature by hand with
// Debian's minisign:
//
//	minisign -Vm MANIFEST -p clonecd.key.pub
//
// GenerateKey writes FILE (the secret key, 0600, not encrypted: a master
// publishes unattended) and FILE.pub. A key made by `minisign -G -W` is
// the same; one made by `minisign -G` (scrypt, passphrase) is read too
// when LoadSecretKey is given a passphrase function. A key's ID is printed
// as minisign prints it (upper case hex, "6D25424143BBD4E").
//
// Sign signs a version's manifest (medium.Manifest, the one file the master
// signs) with the trusted comment "clonecd MANIFEST version 1.20", hashed
// (BLAKE2b-512 then ed25519, minisign's default). Verify accepts that, and
// signatures made by `minisign -S` (hashed or legacy, any trusted
// comment). A signature whose authentic trusted comment names another file
// ("file:node.sfdisk", "clonecd node.sfdisk ...") or another version is
// refused as such. Every refusal is an *Error naming the file, with one of
// ErrUnsigned, ErrUnknownKey, ErrBadSignature, ErrOtherFile.
//
// A Verifier holds the trusted public keys (from --trust files and
// directories, or TrustDir in the cloner's initramfs). Its ReadManifest
// reads MANIFEST and MANIFEST.minisig of a medium (any fs.FS: the CD, a
// store's version directory, the server), verifies, parses and checks the
// version against CLONE_CD_VERSION; ReadFile and Open then check each file
// against the manifest before the step that uses it. With no trusted key
// the result's Status says UNSIGNED, for the caller to log and report.
//
// # Credentials
//
// The server keeps a Secret (32 random bytes, SecretFile, 0600, made on
// first start). A node's token is HMAC-SHA256(secret, "node\x00"+NAME),
// the admin's HMAC-SHA256(secret, "admin\x00"), both base64url without
// padding (43 characters). A client presents "NAME:TOKEN" (a Credential)
// as HTTP Basic auth (curl -u, https://NAME:TOKEN@host/ in iPXE, passed on
// by nginx) or as "Authorization: Bearer NAME:TOKEN". Auth checks it in
// constant time and its middlewares answer 401 (with WWW-Authenticate)
// without a valid credential and 403 when node A writes node B.
//
// # TLS
//
// LoadOrCreateServerCert makes a self-signed ECDSA P-256 certificate on
// first start (CertFile: key and certificate in one PEM file, 0600). Its
// pin is the SHA-256 of the certificate's SubjectPublicKeyInfo, written
// as curl writes it, "sha256//BASE64" (so `curl --pinnedpubkey PIN -k`
// checks the same thing). A pin of the public key, not of the whole
// certificate, survives re-issuing the certificate with the same key: a
// server started with a new address gets that address added to its
// certificate and every cloner built with the old pin still connects.
// ClientTLSConfig accepts exactly the pinned key (and ignores names and
// dates: a cloner's clock is often wrong), or verifies against a CA file.
//
// # What the cloner carries
//
// Public: the trusted keys (TrustDir/ID.pub, InitrdKeys) in its
// initramfs, the server's pin on the kernel command line and in
// clonecd.conf. Secret: its credential, never in the initramfs a clone
// installs on every node, but in an extra initramfs loaded after it
// (CredentialsInitrd): the node's own CredentialFile in its ramclone
// entry, or a CD's CredentialsFile with a line per node of its nodes
// table. VerifiedFS checks every file a cloner reads against the signed
// manifest.
package trust
