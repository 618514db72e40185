package config_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/wedgeproxy/wedge/server/config"
)

func ExampleParse() {
	_, err := config.Parse("wedge.yaml", []byte(`
limits:
  client_body_timeout: 60
  client_max_body_size: 10mb
upstreams:
  app:
    servers:
      - address: 127.0.0.1:8000
        weigth: 2
`))
	fmt.Println(err)
	// Output:
	// wedge.yaml:3: limits.client_body_timeout: durations need a unit, e.g. 60s
	// wedge.yaml:4: limits.client_max_body_size: want bytes as an integer or with a unit k, m or g (powers of 1024), e.g. 16k, got "10mb"
	// wedge.yaml:9: upstreams.app.servers[0].weigth: unknown field (did you mean weight?)
}

func ExampleLoad() {
	dir, err := os.MkdirTemp("", "wedge")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "wedge.yaml")
	os.Setenv("APP_ADDR", "127.0.0.1:8001")
	err = os.WriteFile(path, []byte(`
listen:
  - address: 127.0.0.1:8080
limits:
  client_max_body_size: 0   # no limit
upstreams:
  app:
    servers:
      - address: ${APP_ADDR}
        max_conns: 4
`), 0o600)
	if err != nil {
		panic(err)
	}

	c, err := config.Load(path)
	if err != nil {
		panic(err)
	}
	l := c.Limits
	fmt.Println("body limit:", l.ClientMaxBodySize, "buffer:", l.ClientBodyBufferSize, "header timeout:", l.ClientHeaderTimeout)
	fmt.Println("pool:", c.Upstreams["app"].Servers[0].Address, c.Upstreams["app"].Balance)
	fmt.Println("plugins:", c.Plugins[0].Name, c.Plugins[1].Name, c.Plugins[2].Name)
	// Output:
	// body limit: 0 buffer: 16k header timeout: 1m0s
	// pool: 127.0.0.1:8001 round_robin
	// plugins: router cache compress
}

func ExampleQuickMode() {
	c, err := config.QuickMode([]string{"127.0.0.1:8080"}, []string{"unix:/run/app.sock"}, "")
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Listen[0].Address, "->", c.Upstreams["app"].Servers[0].Address, string(c.Plugins[0].Config))

	_, err = config.QuickMode([]string{"8080"}, nil, "")
	fmt.Println(err)
	// Output:
	// 127.0.0.1:8080 -> unix:/run/app.sock {"routes":[{"upstream":"app"}]}
	// --listen: "8080" is not host:port, e.g. 127.0.0.1:8080
}
