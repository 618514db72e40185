//go:build !unix

package static

import "os"

// openFlags is plain read-only where O_NONBLOCK does not exist.
const openFlags = os.O_RDONLY
