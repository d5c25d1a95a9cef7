// Package versions manages CLONE_CD_VERSION and the image store that
// `clonecd serve` serves: published versions, current, rollback, prune.
package versions
