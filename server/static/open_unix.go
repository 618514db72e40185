//go:build unix

package static

import (
	"os"
	"syscall"
)

// openFlags opens files without blocking: a FIFO placed under a root would
// otherwise hang the open until a writer came. Serve then refuses anything
// that is not a regular file or a directory. O_NONBLOCK changes nothing for
// regular files.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
