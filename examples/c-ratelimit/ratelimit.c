/*
 * c-ratelimit: a Wedge plugin that limits each client address to `rate`
 * requests per second with bursts of up to `burst`, a token bucket per
 * client IP kept in Wedge's shared data (so every VM of the pool, and the
 * next configuration after a reload, share it). A request finding the
 * bucket empty gets 429 Too Many Requests with Retry-After (RFC 6585
 * section 4, RFC 9110 section 10.2.3) and never reaches the upstream.
 *
 * Configuration (the plugin's config: in wedge.yaml):
 *
 *   rate: 5      # tokens added per second, > 0 (fractions allowed); required
 *   burst: 10    # bucket size, >= 1; default: rate rounded up
 *
 * The client is source.address without its port: the peer that connected
 * to Wedge (behind another proxy, that proxy).
 *
 * Build: see README.md.
 */
#include <math.h>

#include "wedge_proxy_wasm.h"

static double rate;  /* tokens per second */
static double burst; /* bucket size */
static char *key_prefix; /* "ratelimit:<plugin_name>:" */
static uint32_t limited_metric;

/* A bucket as stored in shared data: 16 bytes. */
struct bucket {
  double tokens;
  uint64_t updated_ns; /* when tokens was computed */
};

WEDGE_EXPORT(proxy_on_context_create)
void on_context_create(uint32_t context_id, uint32_t parent_context_id) {}

WEDGE_EXPORT(proxy_on_configure)
uint32_t on_configure(uint32_t root_id, uint32_t size) {
  char *cfg, *name;
  size_t len;
  if (wedge_plugin_configuration(&cfg, &len) != PROXY_OK) return 0;
  bool ok = wedge_json_number(cfg, "rate", &rate) && rate > 0;
  if (!ok) {
    wedge_log(PROXY_LOG_ERROR, "c-ratelimit configuration: rate must be a number of requests per second above 0");
    free(cfg);
    return 0;
  }
  if (!wedge_json_number(cfg, "burst", &burst)) burst = ceil(rate);
  free(cfg);
  if (!(burst >= 1)) {
    wedge_log(PROXY_LOG_ERROR, "c-ratelimit configuration: burst must be at least 1");
    return 0;
  }
  if (wedge_get_property("plugin_name", &name, &len) != PROXY_OK) return 0;
  free(key_prefix);
  key_prefix = malloc(len + 12);
  if (key_prefix == NULL) return 0;
  snprintf(key_prefix, len + 12, "ratelimit:%s:", name);
  free(name);
  wedge_define_metric(PROXY_METRIC_COUNTER, "ratelimit_limited_total", &limited_metric);
  wedge_logf(PROXY_LOG_INFO, "limiting each client to %g requests/s, bursts of %g", rate, burst);
  return 1;
}

/* Takes a token from key's bucket. Returns 0 when one was taken, else the
 * seconds until one will be there. -1 when shared data failed. */
static int take_token(const char *key) {
  for (int attempt = 0; attempt < 16; attempt++) {
    char *data;
    size_t len;
    uint32_t cas;
    uint64_t now = wedge_now_ns();
    struct bucket b = {burst, now};
    uint32_t st = wedge_get_shared_data(key, &data, &len, &cas);
    if (st == PROXY_OK && len == sizeof b) memcpy(&b, data, sizeof b);
    free(data);
    if (st != PROXY_OK && st != PROXY_NOT_FOUND) return -1;
    if (now > b.updated_ns) {
      b.tokens = fmin(burst, b.tokens + (double)(now - b.updated_ns) * rate / 1e9);
      b.updated_ns = now;
    }
    if (b.tokens < 1) return (int)ceil((1 - b.tokens) / rate);
    b.tokens -= 1;
    st = wedge_set_shared_data(key, &b, sizeof b, cas);
    if (st == PROXY_OK) return 0;
    if (st != PROXY_CAS_MISMATCH) return -1;
    /* Another VM updated the bucket since we read it: read again. */
  }
  return -1;
}

WEDGE_EXPORT(proxy_on_request_headers)
uint32_t on_request_headers(uint32_t context_id, uint32_t num_headers, uint32_t end_of_stream) {
  char *ip, key[128];
  size_t len;
  if (wedge_source_ip(&ip, &len) != PROXY_OK) return PROXY_ACTION_CONTINUE;
  snprintf(key, sizeof key, "%s%s", key_prefix, ip);
  free(ip);
  int wait = take_token(key);
  if (wait < 0) {
    wedge_log(PROXY_LOG_WARN, "shared data failed; letting the request through");
    return PROXY_ACTION_CONTINUE;
  }
  if (wait == 0) return PROXY_ACTION_CONTINUE;
  char retry[16];
  snprintf(retry, sizeof retry, "%d", wait < 1 ? 1 : wait);
  const char *headers[] = {"retry-after", retry, "content-type", "text/plain; charset=utf-8"};
  static const char body[] = "429 Too Many Requests: slow down\n";
  proxy_increment_metric(limited_metric, 1);
  wedge_send_local_response(429, headers, 2, body, sizeof body - 1, "rate_limited");
  return PROXY_ACTION_PAUSE;
}
