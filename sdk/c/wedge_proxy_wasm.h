/*
 * wedge_proxy_wasm.h: everything a C plugin for Wedge needs, in one header:
 * the proxy-wasm ABI v0.2.1 host calls (imported from module "env"), its
 * status and enum constants, the allocator and ABI-marker exports, and
 * small helpers (C strings in, malloc'd NUL-terminated copies out) for
 * headers, properties (Wedge's wedge.* included), buffers, local
 * responses, shared data and the JSON plugin configuration.
 *
 * The ABI is github.com/proxy-wasm/spec, abi-versions/v0.2.1/README.md;
 * what Wedge does with each call, the properties and the phases are in
 * sdk/README.md beside this directory.
 *
 * Build (Debian: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32):
 *
 *   clang --target=wasm32-wasi -mexec-model=reactor -O2 -I path/to/sdk/c \
 *         -Wl,--strip-all -o plugin.wasm plugin.c
 *
 * -mexec-model=reactor makes wasi-libc export _initialize (which runs
 * constructors; Wedge calls it first) instead of running main.
 *
 * A minimal plugin, adding a field to every request:
 *
 *   #include "wedge_proxy_wasm.h"
 *
 *   WEDGE_EXPORT(proxy_on_context_create)
 *   void on_context_create(uint32_t context_id, uint32_t parent_context_id) {}
 *
 *   WEDGE_EXPORT(proxy_on_request_headers)
 *   uint32_t on_request_headers(uint32_t context_id, uint32_t num_headers, uint32_t end_of_stream) {
 *     wedge_add_header(PROXY_MAP_REQUEST_HEADERS, "x-hello", "c");
 *     return PROXY_ACTION_CONTINUE;
 *   }
 *
 * The callbacks a plugin may export (all uint32_t arguments; spec
 * "Callbacks exposed by the Wasm module"), each with WEDGE_EXPORT(name):
 *
 *   void     proxy_on_context_create(context_id, parent_context_id)  required;
 *            parent 0: the plugin (root) context, id 1 in Wedge; else a request
 *   uint32_t proxy_on_vm_start(root_id, vm_configuration_size)      1 = ok
 *   uint32_t proxy_on_configure(root_id, plugin_configuration_size) 1 = ok, 0 refuses
 *   void     proxy_on_tick(root_id)
 *   void     proxy_on_queue_ready(root_id, queue_id)
 *   void     proxy_on_http_call_response(root_id, token, num_headers, body_size, num_trailers)
 *   uint32_t proxy_on_request_headers(context_id, num_headers, end_of_stream)  an action
 *   uint32_t proxy_on_request_body(context_id, body_size, end_of_stream)
 *   uint32_t proxy_on_response_headers(context_id, num_headers, end_of_stream)
 *   uint32_t proxy_on_response_body(context_id, body_size, end_of_stream)
 *   void     proxy_on_log(context_id)
 *   uint32_t proxy_on_done(context_id)                               1 = done
 *   void     proxy_on_delete(context_id)
 *
 * The header defines two exports, proxy_abi_version_0_2_1 and
 * proxy_on_memory_allocate (malloc). In a plugin of several .c files,
 * define WEDGE_NO_EXPORTS before including it in all files but one.
 *
 * Memory: every helper returning data gives a malloc'd copy, NUL-terminated
 * (the length excludes the NUL), which the caller frees with free(); on any
 * status other than PROXY_OK the pointer is set to NULL. Pointers and
 * size_t are 32-bit.
 */
#ifndef WEDGE_PROXY_WASM_H
#define WEDGE_PROXY_WASM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEDGE_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define WEDGE_EXPORT(name) __attribute__((export_name(#name)))

/* proxy_status_t (spec "Types"): the result of every host call. */
enum {
  PROXY_OK = 0,
  PROXY_NOT_FOUND = 1,             /* no such value, or not available in this context or phase */
  PROXY_BAD_ARGUMENT = 2,          /* refused argument: read-only map or property, bad field name, ... */
  PROXY_SERIALIZATION_FAILURE = 3,
  PROXY_PARSE_FAILURE = 4,
  PROXY_INVALID_MEMORY_ACCESS = 6, /* pointer outside memory, or the allocator returned NULL */
  PROXY_EMPTY = 7,                 /* a shared queue with no item */
  PROXY_CAS_MISMATCH = 8,          /* shared data changed since it was read */
  PROXY_INTERNAL_FAILURE = 10,     /* a host limit or error */
  PROXY_UNIMPLEMENTED = 12,
};

/* proxy_action_t: what a stream callback returns. Anything but CONTINUE
 * pauses the request until proxy_continue_stream or a local response. */
enum { PROXY_ACTION_CONTINUE = 0, PROXY_ACTION_PAUSE = 1 };

/* proxy_log_level_t. */
enum {
  PROXY_LOG_TRACE = 0,
  PROXY_LOG_DEBUG = 1,
  PROXY_LOG_INFO = 2,
  PROXY_LOG_WARN = 3,
  PROXY_LOG_ERROR = 4,
  PROXY_LOG_CRITICAL = 5,
};

/* proxy_map_type_t. */
enum {
  PROXY_MAP_REQUEST_HEADERS = 0,        /* :authority, :path, :method, :scheme, then fields */
  PROXY_MAP_REQUEST_TRAILERS = 1,       /* always empty in Wedge */
  PROXY_MAP_RESPONSE_HEADERS = 2,       /* :status, then fields */
  PROXY_MAP_RESPONSE_TRAILERS = 3,      /* always empty in Wedge */
  PROXY_MAP_HTTP_CALL_RESPONSE_HEADERS = 6,
};

/* proxy_buffer_type_t. */
enum {
  PROXY_BUFFER_REQUEST_BODY = 0,        /* in proxy_on_request_body: the whole body */
  PROXY_BUFFER_RESPONSE_BODY = 1,       /* in proxy_on_response_body */
  PROXY_BUFFER_HTTP_CALL_RESPONSE_BODY = 4,
  PROXY_BUFFER_VM_CONFIGURATION = 6,    /* vm_config: as JSON */
  PROXY_BUFFER_PLUGIN_CONFIGURATION = 7 /* config: as JSON */
};

/* proxy_stream_type_t, for proxy_continue_stream and proxy_close_stream. */
enum { PROXY_STREAM_REQUEST = 0, PROXY_STREAM_RESPONSE = 1 };

/* proxy_metric_type_t. */
enum { PROXY_METRIC_COUNTER = 0, PROXY_METRIC_GAUGE = 1, PROXY_METRIC_HISTOGRAM = 2 };

/* ---- Host calls (spec "Functions exposed by the host"). Returned data is
 * allocated by the host with proxy_on_memory_allocate; free() it. An empty
 * value comes back as NULL, 0. ---- */

WEDGE_IMPORT(proxy_log) uint32_t proxy_log(uint32_t level, const char *msg, size_t msg_len);
WEDGE_IMPORT(proxy_get_log_level) uint32_t proxy_get_log_level(uint32_t *ret_level);
WEDGE_IMPORT(proxy_get_current_time_nanoseconds) uint32_t proxy_get_current_time_nanoseconds(uint64_t *ret_time);
WEDGE_IMPORT(proxy_set_tick_period_milliseconds) uint32_t proxy_set_tick_period_milliseconds(uint32_t period_ms);
WEDGE_IMPORT(proxy_get_property)
uint32_t proxy_get_property(const char *path, size_t path_len, char **ret_data, size_t *ret_size);
WEDGE_IMPORT(proxy_set_property)
uint32_t proxy_set_property(const char *path, size_t path_len, const char *data, size_t data_len);
WEDGE_IMPORT(proxy_get_header_map_value)
uint32_t proxy_get_header_map_value(uint32_t map, const char *key, size_t key_len, char **ret_data, size_t *ret_size);
WEDGE_IMPORT(proxy_add_header_map_value)
uint32_t proxy_add_header_map_value(uint32_t map, const char *key, size_t key_len, const char *value, size_t value_len);
WEDGE_IMPORT(proxy_replace_header_map_value)
uint32_t proxy_replace_header_map_value(uint32_t map, const char *key, size_t key_len, const char *value, size_t value_len);
WEDGE_IMPORT(proxy_remove_header_map_value)
uint32_t proxy_remove_header_map_value(uint32_t map, const char *key, size_t key_len);
WEDGE_IMPORT(proxy_get_header_map_pairs) uint32_t proxy_get_header_map_pairs(uint32_t map, char **ret_data, size_t *ret_size);
WEDGE_IMPORT(proxy_set_header_map_pairs) uint32_t proxy_set_header_map_pairs(uint32_t map, const char *data, size_t data_len);
WEDGE_IMPORT(proxy_get_header_map_size) uint32_t proxy_get_header_map_size(uint32_t map, size_t *ret_size);
WEDGE_IMPORT(proxy_get_buffer_bytes)
uint32_t proxy_get_buffer_bytes(uint32_t buffer, size_t start, size_t max_size, char **ret_data, size_t *ret_size);
WEDGE_IMPORT(proxy_set_buffer_bytes)
uint32_t proxy_set_buffer_bytes(uint32_t buffer, size_t start, size_t size, const char *data, size_t data_len);
WEDGE_IMPORT(proxy_get_buffer_status) uint32_t proxy_get_buffer_status(uint32_t buffer, size_t *ret_len, uint32_t *ret_flags);
WEDGE_IMPORT(proxy_send_local_response)
uint32_t proxy_send_local_response(uint32_t status, const char *details, size_t details_len, const char *body, size_t body_len,
                                   const char *headers, size_t headers_len, int32_t grpc_status);
WEDGE_IMPORT(proxy_continue_stream) uint32_t proxy_continue_stream(uint32_t stream);
WEDGE_IMPORT(proxy_close_stream) uint32_t proxy_close_stream(uint32_t stream);
WEDGE_IMPORT(proxy_get_status) uint32_t proxy_get_status(uint32_t *ret_code, char **ret_msg, size_t *ret_msg_len);
WEDGE_IMPORT(proxy_get_shared_data)
uint32_t proxy_get_shared_data(const char *key, size_t key_len, char **ret_data, size_t *ret_size, uint32_t *ret_cas);
WEDGE_IMPORT(proxy_set_shared_data)
uint32_t proxy_set_shared_data(const char *key, size_t key_len, const char *data, size_t data_len, uint32_t cas);
WEDGE_IMPORT(proxy_register_shared_queue) uint32_t proxy_register_shared_queue(const char *name, size_t name_len, uint32_t *ret_id);
WEDGE_IMPORT(proxy_resolve_shared_queue)
uint32_t proxy_resolve_shared_queue(const char *vm_id, size_t vm_id_len, const char *name, size_t name_len, uint32_t *ret_id);
WEDGE_IMPORT(proxy_enqueue_shared_queue) uint32_t proxy_enqueue_shared_queue(uint32_t id, const char *data, size_t data_len);
WEDGE_IMPORT(proxy_dequeue_shared_queue) uint32_t proxy_dequeue_shared_queue(uint32_t id, char **ret_data, size_t *ret_size);
WEDGE_IMPORT(proxy_define_metric) uint32_t proxy_define_metric(uint32_t type, const char *name, size_t name_len, uint32_t *ret_id);
WEDGE_IMPORT(proxy_increment_metric) uint32_t proxy_increment_metric(uint32_t id, int64_t delta);
WEDGE_IMPORT(proxy_record_metric) uint32_t proxy_record_metric(uint32_t id, uint64_t value);
WEDGE_IMPORT(proxy_get_metric) uint32_t proxy_get_metric(uint32_t id, uint64_t *ret_value);
WEDGE_IMPORT(proxy_http_call)
uint32_t proxy_http_call(const char *upstream, size_t upstream_len, const char *headers, size_t headers_len, const char *body,
                         size_t body_len, const char *trailers, size_t trailers_len, uint32_t timeout_ms, uint32_t *ret_token);
WEDGE_IMPORT(proxy_set_effective_context) uint32_t proxy_set_effective_context(uint32_t context_id);
WEDGE_IMPORT(proxy_done) uint32_t proxy_done(void);
WEDGE_IMPORT(proxy_call_foreign_function)
uint32_t proxy_call_foreign_function(const char *name, size_t name_len, const char *args, size_t args_len, char **ret_data,
                                     size_t *ret_size);

/* ---- Exports every plugin needs. ---- */

#ifndef WEDGE_NO_EXPORTS
WEDGE_EXPORT(proxy_abi_version_0_2_1) void wedge_abi_version_0_2_1(void) {}

/* The allocator the host uses for the data it returns; free() releases it. */
WEDGE_EXPORT(proxy_on_memory_allocate) void *wedge_on_memory_allocate(size_t size) { return malloc(size ? size : 1); }
#endif

/* ---- Helpers. ---- */

/* Makes *data (host-allocated, len bytes, maybe NULL) a NUL-terminated
 * malloc'd string. Returns PROXY_OK, or PROXY_INTERNAL_FAILURE when out of
 * memory (then *data is freed and NULL). */
static inline uint32_t wedge__terminate(char **data, size_t len) {
  char *p = realloc(*data, len + 1);
  if (p == NULL) {
    free(*data);
    *data = NULL;
    return PROXY_INTERNAL_FAILURE;
  }
  p[len] = '\0';
  *data = p;
  return PROXY_OK;
}

/* Finishes a host call that returned (*data, *len): on success a
 * NUL-terminated copy, else *data NULL and *len 0. */
static inline uint32_t wedge__result(uint32_t st, char **data, size_t *len) {
  if (st != PROXY_OK) {
    *data = NULL;
    *len = 0;
    return st;
  }
  return wedge__terminate(data, *len);
}

/* Logs msg (a C string) at level. */
static inline uint32_t wedge_log(uint32_t level, const char *msg) { return proxy_log(level, msg, strlen(msg)); }

/* Logs a printf-formatted message at level (truncated at 1023 bytes). */
static inline uint32_t wedge_logf(uint32_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline uint32_t wedge_logf(uint32_t level, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return PROXY_BAD_ARGUMENT;
  return proxy_log(level, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* The host's wall clock, nanoseconds since the Unix epoch. */
static inline uint64_t wedge_now_ns(void) {
  uint64_t t = 0;
  proxy_get_current_time_nanoseconds(&t);
  return t;
}

/* The first value of field name (case-insensitive; "host" is :authority)
 * in map: *value a malloc'd C string of *len bytes. PROXY_NOT_FOUND when
 * absent or when the map is not available now. */
static inline uint32_t wedge_get_header(uint32_t map, const char *name, char **value, size_t *len) {
  return wedge__result(proxy_get_header_map_value(map, name, strlen(name), value, len), value, len);
}

/* Appends field name: value (on a pseudo-field, sets it). */
static inline uint32_t wedge_add_header(uint32_t map, const char *name, const char *value) {
  return proxy_add_header_map_value(map, name, strlen(name), value, strlen(value));
}

/* Sets field name to value: replaces the first, drops the others, appends if absent. */
static inline uint32_t wedge_set_header(uint32_t map, const char *name, const char *value) {
  return proxy_replace_header_map_value(map, name, strlen(name), value, strlen(value));
}

/* Removes every field named name. */
static inline uint32_t wedge_remove_header(uint32_t map, const char *name) {
  return proxy_remove_header_map_value(map, name, strlen(name));
}

/* Property path (dotted, "source.address"; Wedge also takes the segments
 * joined by NUL bytes, which proxy_get_property accepts directly) as a
 * malloc'd C string: strings come as their bytes, ints as 8 bytes
 * little-endian (use wedge_get_property_int). PROXY_NOT_FOUND when it has no
 * value here. */
static inline uint32_t wedge_get_property(const char *path, char **value, size_t *len) {
  return wedge__result(proxy_get_property(path, strlen(path), value, len), value, len);
}

/* An int, timestamp or duration property. */
static inline uint32_t wedge_get_property_int(const char *path, int64_t *out) {
  char *v;
  size_t n;
  uint32_t st = wedge_get_property(path, &v, &n);
  if (st != PROXY_OK) return st;
  if (n != 8) {
    free(v);
    return PROXY_SERIALIZATION_FAILURE;
  }
  uint64_t x = 0;
  for (int i = 7; i >= 0; i--) x = (x << 8) | (unsigned char)v[i];
  free(v);
  *out = (int64_t)x;
  return PROXY_OK;
}

/* Sets property path (a C string) to value for the rest of the request.
 * wedge_set_property("wedge.upstream", "api") routes the request to pool
 * "api" (in proxy_on_request_headers). */
static inline uint32_t wedge_set_property(const char *path, const char *value) {
  return proxy_set_property(path, strlen(path), value, strlen(value));
}

/* The client's IP address, without the port and brackets, from
 * source.address ("127.0.0.1:5555", "[::1]:5555"). */
static inline uint32_t wedge_source_ip(char **ip, size_t *len) {
  uint32_t st = wedge_get_property("source.address", ip, len);
  if (st != PROXY_OK) return st;
  char *s = *ip, *colon = strrchr(s, ':');
  if (s[0] == '[') {
    char *end = strchr(s, ']');
    if (end != NULL) {
      *end = '\0';
      memmove(s, s + 1, (size_t)(end - s));
    }
  } else if (colon != NULL && strchr(s, ':') == colon) {
    *colon = '\0';
  }
  *len = strlen(s);
  return PROXY_OK;
}

/* The whole of buffer as a malloc'd, NUL-terminated copy (an empty buffer
 * gives "" with *len 0). PROXY_NOT_FOUND when not available now. */
static inline uint32_t wedge_get_buffer(uint32_t buffer, char **data, size_t *len) {
  size_t n = 0;
  uint32_t flags = 0;
  uint32_t st = proxy_get_buffer_status(buffer, &n, &flags);
  *data = NULL;
  *len = 0;
  if (st != PROXY_OK) return st;
  if (n > 0) {
    st = proxy_get_buffer_bytes(buffer, 0, n, data, len);
    if (st != PROXY_OK) return wedge__result(st, data, len);
  }
  return wedge__terminate(data, *len);
}

/* The plugin configuration (config: in wedge.yaml, as JSON); "" when none. */
static inline uint32_t wedge_plugin_configuration(char **data, size_t *len) {
  return wedge_get_buffer(PROXY_BUFFER_PLUGIN_CONFIGURATION, data, len);
}

/* Serializes n name/value pairs (pairs[2i], pairs[2i+1], C strings) as a
 * proxy-wasm header map (spec "Serialization": u32 count, count x (u32 name
 * size, u32 value size), then each name and value followed by NUL; little
 * endian). Returns a malloc'd buffer of *len bytes, NULL when out of memory. */
static inline char *wedge_serialize_pairs(const char *const *pairs, size_t n, size_t *len) {
  size_t size = 4 + 8 * n;
  for (size_t i = 0; i < 2 * n; i++) size += strlen(pairs[i]) + 1;
  char *out = malloc(size ? size : 1), *p;
  if (out == NULL) return NULL;
  uint32_t v = (uint32_t)n;
  memcpy(out, &v, 4); /* wasm32 is little-endian */
  p = out + 4 + 8 * n;
  for (size_t i = 0; i < n; i++) {
    uint32_t kl = (uint32_t)strlen(pairs[2 * i]), vl = (uint32_t)strlen(pairs[2 * i + 1]);
    memcpy(out + 4 + 8 * i, &kl, 4);
    memcpy(out + 8 + 8 * i, &vl, 4);
    memcpy(p, pairs[2 * i], kl + 1);
    p += kl + 1;
    memcpy(p, pairs[2 * i + 1], vl + 1);
    p += vl + 1;
  }
  *len = size;
  return out;
}

/* Answers the request with status, the n_pairs fields in headers (name,
 * value, name, value, ...), body (body_len bytes) and details (shown as
 * response.code_details and in the access log; may be NULL). In a request
 * phase the upstream is not asked; the phase ends at once whatever the
 * callback returns. */
static inline uint32_t wedge_send_local_response(uint32_t status, const char *const *headers, size_t n_pairs, const char *body,
                                                 size_t body_len, const char *details) {
  size_t hl = 0;
  char *h = wedge_serialize_pairs(headers, n_pairs, &hl);
  if (h == NULL) return PROXY_INTERNAL_FAILURE;
  if (details == NULL) details = "";
  uint32_t st = proxy_send_local_response(status, details, strlen(details), body, body_len, h, hl, -1);
  free(h);
  return st;
}

/* The value of shared-data key (*data, *len, malloc'd) and its CAS.
 * PROXY_NOT_FOUND when the key was never set. Shared data is host-wide in
 * Wedge: prefix keys with the plugin's name. */
static inline uint32_t wedge_get_shared_data(const char *key, char **data, size_t *len, uint32_t *cas) {
  *cas = 0;
  return wedge__result(proxy_get_shared_data(key, strlen(key), data, len, cas), data, len);
}

/* Stores data under key if cas is the key's current CAS (0: always; a new
 * key accepts any), else PROXY_CAS_MISMATCH: read again and retry. */
static inline uint32_t wedge_set_shared_data(const char *key, const void *data, size_t len, uint32_t cas) {
  return proxy_set_shared_data(key, strlen(key), (const char *)data, len, cas);
}

/* Defines (or finds again) a metric, exported as wedge_<name>{plugin="..."}. */
static inline uint32_t wedge_define_metric(uint32_t type, const char *name, uint32_t *id) {
  return proxy_define_metric(type, name, strlen(name), id);
}

/* ---- JSON configuration: a lookup of top-level members, enough for the
 * flat objects plugins are usually configured with. ---- */

static inline const char *wedge__json_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}

/* The end of the JSON value starting at p (after leading whitespace), or
 * NULL when it is cut short. Containers are skipped by bracket depth,
 * without checking their insides. */
static inline const char *wedge__json_skip(const char *p) {
  int depth = 0;
  for (;;) {
    p = wedge__json_ws(p);
    switch (*p) {
    case '"':
      for (p++; *p != '"'; p++) {
        if (*p == '\\') p++;
        if (*p == '\0') return NULL;
      }
      p++;
      break;
    case '{':
    case '[':
      depth++;
      p++;
      continue;
    case '}':
    case ']':
      if (depth == 0) return NULL;
      depth--;
      p++;
      break;
    case ',':
    case ':':
      if (depth == 0) return NULL;
      p++;
      continue;
    case '\0':
      return NULL;
    default:
      while (*p != '\0' && strchr(",:]} \t\r\n", *p) == NULL) p++;
    }
    if (depth == 0) return p;
  }
}

/* The start of the value of top-level member key in the JSON object json,
 * or NULL when json is not an object or has no such key (keys with escapes
 * are not matched). */
static inline const char *wedge_json_member(const char *json, const char *key) {
  const char *p = wedge__json_ws(json);
  size_t kl = strlen(key);
  if (*p++ != '{') return NULL;
  for (;;) {
    p = wedge__json_ws(p);
    if (*p != '"') return NULL;
    const char *k = p + 1, *end = wedge__json_skip(p);
    if (end == NULL) return NULL;
    bool match = (size_t)(end - k) == kl + 1 && memcmp(k, key, kl) == 0;
    p = wedge__json_ws(end);
    if (*p++ != ':') return NULL;
    p = wedge__json_ws(p);
    if (match) return p;
    if ((p = wedge__json_skip(p)) == NULL) return NULL;
    p = wedge__json_ws(p);
    if (*p++ != ',') return NULL;
  }
}

/* Top-level member key as a number. Returns false when it is absent or
 * not a number. */
static inline bool wedge_json_number(const char *json, const char *key, double *out) {
  const char *v = wedge_json_member(json, key);
  char *end;
  if (v == NULL || !(*v == '-' || (*v >= '0' && *v <= '9'))) return false;
  *out = strtod(v, &end);
  return end != v;
}

/* Top-level member key as a string, copied (escapes \" \\ \/ \n \t \r kept
 * decoded, \u not supported: returns NULL) into a malloc'd C string. NULL
 * when absent or not a string. */
static inline char *wedge_json_string(const char *json, const char *key) {
  const char *v = wedge_json_member(json, key), *end;
  if (v == NULL || *v != '"' || (end = wedge__json_skip(v)) == NULL) return NULL;
  char *out = malloc((size_t)(end - v)), *o = out;
  if (out == NULL) return NULL;
  for (const char *p = v + 1; p < end - 1; p++) {
    if (*p != '\\') {
      *o++ = *p;
      continue;
    }
    switch (*++p) {
    case 'n': *o++ = '\n'; break;
    case 't': *o++ = '\t'; break;
    case 'r': *o++ = '\r'; break;
    case '"': case '\\': case '/': *o++ = *p; break;
    default: free(out); return NULL;
    }
  }
  *o = '\0';
  return out;
}

#endif /* WEDGE_PROXY_WASM_H */
