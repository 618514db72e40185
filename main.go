// Command wedge is a buffering edge server for one-request-per-worker app
// servers (Gunicorn, Unicorn, Puma): it reads whole requests before the app
// sees a byte and whole responses before the client is fed, so slow clients
// never hold a worker.
//
// Usage:
//
//	wedge [--listen ADDR]... [--to ADDR]... [--admin ADDR]   quick mode
//	wedge --domain NAME... [--email ADDR] [--to ADDR]...      quick mode with automatic HTTPS
//	wedge --config wedge.yaml                                 config mode
//	wedge check --config wedge.yaml                           validate only
//	wedge demo                                                a sample app behind Wedge
//	wedge plugin test FILE.yaml [--plugin X.wasm]             a plugin against described requests
//
// With no flags Wedge listens on 127.0.0.1:8080 and proxies to
// 127.0.0.1:8000. With --domain it serves HTTPS on :443 (HTTP/1.1, HTTP/2,
// HTTP/3) with certificates from Let's Encrypt (or --ca), renewed in the
// background, and redirects :80 to HTTPS. SIGTERM and SIGINT drain and
// stop; SIGHUP reloads the configuration file and certificate files.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/wedgeproxy/wedge/internal/demo"
	"github.com/wedgeproxy/wedge/internal/plugintest"
	"github.com/wedgeproxy/wedge/plugins"
	"github.com/wedgeproxy/wedge/server"
	"github.com/wedgeproxy/wedge/server/config"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usage is what `wedge help` and `wedge --help` print before the flags.
const usage = `usage:
  wedge [--listen ADDR]... [--to ADDR]... [--admin ADDR]   quick mode
  wedge --domain NAME... [--email ADDR] [--to ADDR]...      quick mode with automatic HTTPS
  wedge --config wedge.yaml                                 serve a configuration file (examples/wedge.yaml)
  wedge check --config wedge.yaml                           check a configuration and its plugins, like nginx -t
  wedge demo                                                a sample app behind Wedge, with a URL to open
  wedge plugin test FILE.yaml [--plugin X.wasm]             run a plugin against described requests (sdk/README.md)
  wedge help                                                this text

flags:
`

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type options struct {
	configFile string
	listen     multiFlag
	to         multiFlag
	admin      string
	domain     multiFlag
	email      string
	ca         string
}

func parseFlags(name string, args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.configFile, "config", "", "YAML configuration `file` (see examples/wedge.yaml)")
	fs.Var(&o.listen, "listen", "client `address` to listen on, host:port (repeatable; default 127.0.0.1:8080)")
	fs.Var(&o.to, "to", "upstream `address`, host:port or unix:/path.sock (repeatable: several make a pool; default 127.0.0.1:8000)")
	fs.StringVar(&o.admin, "admin", "", "admin `address` for /metrics (default off)")
	fs.Var(&o.domain, "domain", "serve HTTPS for `name` with an ACME certificate (repeatable; --listen then defaults to :443, and :80 redirects)")
	fs.StringVar(&o.email, "email", "", "ACME account contact `address` (with --domain)")
	fs.StringVar(&o.ca, "ca", "", "ACME directory `URL` (with --domain; default Let's Encrypt)")
	fs.Usage = func() {
		if name == "wedge" {
			fmt.Fprint(fs.Output(), usage)
		} else {
			fmt.Fprintf(fs.Output(), "usage: %s --config wedge.yaml | [quick-mode flags]\n", name)
		}
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.configFile != "" && o.quick() {
		return nil, errors.New("--config cannot be combined with --listen, --to, --admin, --domain, --email or --ca")
	}
	return o, nil
}

// flagExit is the exit status for a flag error: 0 for -h/--help, which
// printed the usage, 2 for a bad flag.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// quick reports whether any quick-mode flag was given.
func (o *options) quick() bool {
	return len(o.listen) > 0 || len(o.to) > 0 || o.admin != "" || len(o.domain) > 0 || o.email != "" || o.ca != ""
}

// load builds the configuration the flags describe.
func (o *options) load() (*config.Config, error) {
	switch {
	case o.configFile != "":
		return config.Load(o.configFile)
	case o.quick():
		return config.Quick{Listen: o.listen, To: o.to, Admin: o.admin, Domains: o.domain, Email: o.email, CA: o.ca}.Config()
	}
	cfg := config.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "":
		return serve(args, stderr)
	case "check":
		o, err := parseFlags("wedge check", args, stderr)
		if err != nil {
			return flagExit(err)
		}
		cfg, err := o.load()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		// Like nginx -t: build everything short of listening, so a plugin
		// that does not compile or start is reported here too.
		cfg.Log.Access = "off"
		srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.DiscardHandler), Builtins: plugins.Builtin})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		srv.Shutdown(context.Background())
		for _, w := range cfg.Warnings() {
			fmt.Fprintln(stderr, "warning:", w)
		}
		fmt.Fprintln(stdout, "configuration ok")
		return 0
	case "demo":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := demo.Run(ctx, stdout, demo.Options{}); err != nil {
			fmt.Fprintln(stderr, "demo:", err)
			return 1
		}
		return 0
	case "plugin":
		// wedge plugin test FILE.yaml: a plugin against described requests.
		return plugintest.Command(args, stdout, stderr)
	case "help":
		parseFlags("wedge", []string{"-h"}, stdout)
		return 0
	}
	fmt.Fprintf(stderr, "wedge: unknown command %q (try: check, demo, plugin, help)\n", cmd)
	return 2
}

func serve(args []string, stderr io.Writer) int {
	o, err := parseFlags("wedge", args, stderr)
	if err != nil {
		return flagExit(err)
	}
	cfg, err := o.load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: levelOf(cfg.Log.Level)}))
	raiseOpenFileLimit(log)
	srv, err := server.New(cfg, server.Options{Logger: log, Builtins: plugins.Builtin})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := srv.Start(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for {
		select {
		case err := <-srv.Errors():
			log.Error("listener stopped", "err", err)
			srv.Shutdown(context.Background())
			return 1
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(o, srv, log)
				continue
			}
			log.Info("draining", "signal", sig.String())
			if err := srv.Shutdown(context.Background()); err != nil {
				log.Warn("shutdown timed out; closed the remaining connections", "err", err)
			}
			log.Info("stopped")
			return 0
		}
	}
}

// reload re-reads the configuration file; a bad one is refused and the
// running configuration keeps serving.
func reload(o *options, srv *server.Server, log *slog.Logger) {
	if o.configFile == "" {
		log.Info("SIGHUP: no configuration file to reload (quick mode)")
		return
	}
	cfg, err := o.load()
	if err != nil {
		log.Error("reload refused: the running configuration keeps serving", "err", err.Error())
		return
	}
	if err := srv.Reload(cfg); err != nil {
		log.Error("reload refused: the running configuration keeps serving", "err", err.Error())
	}
}

func levelOf(s string) slog.Level {
	var l slog.Level
	if l.UnmarshalText([]byte(s)) != nil {
		return slog.LevelInfo
	}
	return l
}

// raiseOpenFileLimit lifts the soft RLIMIT_NOFILE to the hard limit: each
// client connection, upstream connection and temp file is a descriptor.
func raiseOpenFileLimit(log *slog.Logger) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur < rl.Max {
		old := rl.Cur
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			log.Warn("could not raise the open-file limit", "soft", old, "hard", rl.Max, "err", err)
			return
		}
	}
	log.Debug("open-file limit", "soft", rl.Cur, "hard", rl.Max)
}
