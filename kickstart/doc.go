// Package kickstart parses Red Hat kickstart files (ks.cfg) and turns what
// clonecd can honour into a layout, network settings and %post scripts.
package kickstart
