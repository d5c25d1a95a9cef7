// Package testenv gives tests the real environment they need: tools on
// PATH, root, loop devices and the cached Debian golden root. Under
// CLONECD_STRICT=1 (set by `make test`) anything missing fails the test
// instead of skipping it, so CI cannot pass by skipping.
package testenv
