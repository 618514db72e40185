package config

import (
	"errors"
	"testing"
)

func TestQuickMode(t *testing.T) {
	tests := []struct {
		name    string
		listen  []string
		to      []string
		admin   string
		check   func(t *testing.T, c *Config)
		wantErr string
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c *Config) {
				if len(c.Listen) != 1 || c.Listen[0].Address != "127.0.0.1:8080" || c.Admin.Address != "" {
					t.Errorf("listen %+v admin %+v", c.Listen, c.Admin)
				}
				u := c.Upstreams["app"]
				if len(c.Upstreams) != 1 || len(u.Servers) != 1 || u.Servers[0].Address != "127.0.0.1:8000" || len(c.Plugins) != 3 {
					t.Errorf("upstreams %+v plugins %+v", c.Upstreams, c.Plugins)
				}
				if c.File != "" || c.Limits.ClientMaxBodySize != 1<<20 {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			name:   "several",
			listen: []string{"127.0.0.1:9000", "[::1]:9000"},
			to:     []string{"127.0.0.1:8000", "unix:/run/app.sock"},
			admin:  "127.0.0.1:9090",
			check: func(t *testing.T, c *Config) {
				if len(c.Listen) != 2 || c.Listen[1].Address != "[::1]:9000" || c.Admin.Address != "127.0.0.1:9090" {
					t.Errorf("listen %+v admin %+v", c.Listen, c.Admin)
				}
				u := c.Upstreams["app"]
				if len(u.Servers) != 2 || u.Servers[1].Address != "unix:/run/app.sock" || u.Tries != 2 || u.Servers[1].Weight != 1 {
					t.Errorf("app %+v", u)
				}
			},
		},
		{
			name:    "bad listen",
			listen:  []string{"8080", "127.0.0.1:8080"},
			wantErr: `--listen: "8080" is not host:port, e.g. 127.0.0.1:8080`,
		},
		{
			name:    "bad to",
			to:      []string{"unix:app.sock", "127.0.0.1:8000", "127.0.0.1:8000"},
			wantErr: `--to: "unix:app.sock": unix socket path must be absolute, e.g. unix:/run/app.sock` + "\n" + `--to: "127.0.0.1:8000" is already upstreams.app.servers[1] (use weight instead)`,
		},
		{
			name:    "admin clash",
			listen:  []string{"0.0.0.0:9000"},
			admin:   "127.0.0.1:9000",
			wantErr: `--admin: "127.0.0.1:9000" clashes with listen[0].address`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := QuickMode(tt.listen, tt.to, tt.admin)
			if tt.wantErr != "" {
				var e *Error
				if !errors.As(err, &e) || err.Error() != tt.wantErr {
					t.Fatalf("got %v, want *Error:\n%s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
