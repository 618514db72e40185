package upstream_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/upstream"
)

func ExamplePool_Acquire() {
	// An upstream that answers each line with "pong".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					io.WriteString(c, "pong\n")
				}
			}()
		}
	}()

	pool, err := upstream.NewPool("app", &config.Upstream{
		Servers: []config.UpstreamServer{{Address: ln.Addr().String(), Weight: 1, MaxFails: 1}},
	}, upstream.Options{ConnectTimeout: 5 * time.Second})
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	for range 2 {
		var tried []*upstream.Server
		c, err := pool.Acquire(context.Background(), tried)
		var de *upstream.DialError
		if errors.As(err, &de) {
			// A proxy retries an idempotent request on the next server:
			// tried = append(tried, de.Server), up to pool.Tries().
			fmt.Println("dial failed:", de)
			return
		}
		if err != nil {
			fmt.Println(err) // ErrNoServer -> 502, ErrQueueFull/ErrQueueTimeout -> 503
			return
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "ping\n")
		line, err := c.Reader.ReadString('\n')
		if err != nil {
			c.Fail(err) // counts against the server (max_fails)
			return
		}
		fmt.Printf("%q reused=%v\n", line, c.Reused)
		c.Release(true) // back to the keep-alive list
	}
	// Output:
	// "pong\n" reused=false
	// "pong\n" reused=true
}
