// as-abtest: an A/B split for Wedge, in AssemblyScript with wedge-proxy-wasm.
//
// Each user is in one of 100 buckets, kept in a cookie (default
// "wedge_ab=<0-99>"). Buckets below `share` see variant B: the request goes
// to the upstream pool `pool_b` (wedge.upstream); the others see variant
// A, pool `pool_a`. A request without a valid cookie gets a random bucket
// and the response sets the cookie, so the user stays in that variant.
// Every request forwarded carries x-ab-variant: a or b, and each request
// logs "abtest: bucket <n> variant <a|b>" (plus " new" when assigned).
//
// Plugin configuration (wedge.yaml's config:):
//   pool_b   the pool of variant B (required)
//   pool_a   the pool of variant A (default: leave the request where the
//            chain routed it, e.g. the router plugin's default route)
//   share    percentage of users in variant B, 0-100 (default 50)
//   cookie   the cookie's name (default "wedge_ab")
//   max_age  the cookie's Max-Age, seconds (default 2592000, 30 days)
//
// Build: npm ci && npm run build   (README.md)

export * from "wedge-proxy-wasm/assembly/exports";
import {
  Action, HttpContext, RootContext, Status, setRootContext, parseJSONObject, logError, logInfo,
  requestCookie, setUpstream, replaceRequestHeader, addResponseHeader,
} from "wedge-proxy-wasm/assembly";

class ABRoot extends RootContext {
  poolA: string = "";
  poolB: string = "";
  share: i32 = 50;
  cookie: string = "wedge_ab";
  maxAge: i64 = 2592000;

  onConfigure(config: ArrayBuffer): bool {
    const c = parseJSONObject(config);
    if (c == null) {
      logError("abtest: the configuration is not a JSON object");
      return false;
    }
    this.poolA = c.getString("pool_a");
    this.poolB = c.getString("pool_b");
    const share = c.getNumber("share", 50);
    this.cookie = c.getString("cookie", "wedge_ab");
    this.maxAge = <i64>c.getNumber("max_age", 2592000);
    if (this.poolB == "" || share < 0 || share > 100 || share != Math.floor(share) || this.cookie == "") {
      logError("abtest: want {\"pool_b\": name, \"pool_a\": name, \"share\": 0-100, \"cookie\": name, \"max_age\": seconds}");
      return false; // Wedge refuses to start, naming the plugin
    }
    this.share = <i32>share;
    return true;
  }

  createHttpContext(id: u32): HttpContext {
    return new ABFilter(id, this);
  }
}

class ABFilter extends HttpContext {
  bucket: i32 = -1;
  assigned: bool = false;

  onRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    const root = changetype<ABRoot>(this.root);
    this.bucket = parseBucket(requestCookie(root.cookie));
    if (this.bucket < 0) {
      this.bucket = <i32>Math.floor(Math.random() * 100); // env.seed: crypto/rand in Wedge
      this.assigned = true;
    }
    const variant = this.bucket < root.share ? "b" : "a";
    const pool = variant == "b" ? root.poolB : root.poolA;
    if (pool != "" && setUpstream(pool) != Status.Ok) logError("abtest: no upstream pool " + pool);
    replaceRequestHeader("x-ab-variant", variant);
    logInfo("abtest: bucket " + this.bucket.toString() + " variant " + variant + (this.assigned ? " new" : ""));
    return Action.Continue;
  }

  onResponseHeaders(numHeaders: u32, endOfStream: bool): Action {
    if (this.assigned) {
      const root = changetype<ABRoot>(this.root);
      addResponseHeader("set-cookie", root.cookie + "=" + this.bucket.toString() +
        "; Path=/; Max-Age=" + root.maxAge.toString() + "; SameSite=Lax");
    }
    return Action.Continue;
  }
}

// parseBucket reads a cookie value 0-99; -1 when absent or invalid.
function parseBucket(v: string | null): i32 {
  if (v == null || v.length == 0 || v.length > 2) return -1;
  let n: i32 = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

setRootContext((id: u32): RootContext => new ABRoot(id));
