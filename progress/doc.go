// Package progress prints a one-line progress meter (bytes, items, rate,
// ETA) when its output is a terminal and stays quiet otherwise.
package progress
