//go:build !unix

package upstream

// connCheck is empty where there is no non-blocking read on a raw socket:
// idle connections are trusted until keepalive_timeout.
type connCheck struct{}

func (c *Conn) initCheck() {}

func (c *Conn) alive() bool { return true }

// hasLiveCheck tells tests that alive detects a closed connection.
const hasLiveCheck = false
