package config

// Warnings returns advice about a valid configuration that will likely not
// do what its author meant, one line each as "path: why" (with the file's
// line where it is known, as Error's problems are). Start-up logs them and
// `wedge check` prints them; none stops Wedge.
//
// Today: a chain without the built-in router. Wedge makes no routing
// decision itself, so a request that no plugin routes (wedge.upstream or
// wedge.static) gets 502; a chain of the author's plugins only is fine
// when one of them routes, which Wedge cannot see before requests come.
func (c *Config) Warnings() []string {
	for _, p := range c.Plugins {
		if p.Builtin == "router" {
			return nil
		}
	}
	v := &problems{file: c.File, src: c.src}
	if len(c.Plugins) == 0 {
		v.add("plugins", "no plugins: nothing routes requests, so every request gets 502; "+
			"leave plugins: out for the default chain, or start it with {name: router, builtin: router, config: {routes: [{upstream: POOL}]}}")
	} else {
		v.add("plugins", "no built-in router in the chain: a request goes only where one of these plugins routes it "+
			"(wedge.upstream or wedge.static), else it gets 502; to send the rest to a pool, put "+
			"{name: router, builtin: router, config: {routes: [{upstream: POOL}]}} first")
	}
	out := make([]string, len(v.list))
	for i, p := range v.list {
		out[i] = p.String()
	}
	return out
}
