// Package netclone is network recloning: the image server (`clonecd
// serve`), the node's resumable image stream and reports, `status`,
// `ramclone`, `reclone` and `reclone-all`.
package netclone
