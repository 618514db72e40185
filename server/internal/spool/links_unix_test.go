//go:build unix

package spool

import (
	"os"
	"syscall"
)

// linkCount returns the number of names a file has, or -1 when unknown.
func linkCount(st os.FileInfo) int64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return int64(sys.Nlink)
	}
	return -1
}
