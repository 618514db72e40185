// filter.c: a proxy-wasm (ABI v0.2.1) filter in C against the raw ABI. It
// logs each request's path, sends /api/ requests to the "api" pool
// (wedge.upstream) and adds x-from-c: 1 to every request.
//
// Built with Debian bookworm's clang 14, lld and wasi-libc
// (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32):
//
//	clang --target=wasm32-wasi -mexec-model=reactor -Os -Wl,--strip-all -o filter_c.wasm filter.c
//
// -mexec-model=reactor links wasi-libc's reactor start-up (_initialize)
// instead of main's. size_t and pointers are 32-bit.
#include <stdint.h>
#include <stdlib.h>

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

IMPORT(proxy_log) uint32_t proxy_log(uint32_t level, const char *msg, size_t len);
IMPORT(proxy_add_header_map_value)
uint32_t proxy_add_header_map_value(uint32_t map, const char *key, size_t key_len,
                                    const char *value, size_t value_len);
IMPORT(proxy_get_property)
uint32_t proxy_get_property(const char *path, size_t path_len, char **value, size_t *value_len);
IMPORT(proxy_set_property)
uint32_t proxy_set_property(const char *path, size_t path_len, const char *value, size_t value_len);

EXPORT(proxy_abi_version_0_2_1) void abi_version(void) {}
EXPORT(proxy_on_memory_allocate) void *on_memory_allocate(size_t size) { return malloc(size); }
EXPORT(proxy_on_context_create) void on_context_create(uint32_t id, uint32_t parent) {}

EXPORT(proxy_on_request_headers)
uint32_t on_request_headers(uint32_t id, uint32_t num_headers, uint32_t end_of_stream) {
  char *path; size_t n;
  if (proxy_get_property("request.url_path", 16, &path, &n) == 0) {
    proxy_log(2, path, n);
    if (n >= 5 && path[0] == '/' && path[1] == 'a' && path[2] == 'p' && path[3] == 'i' && path[4] == '/')
      proxy_set_property("wedge.upstream", 14, "api", 3);
    free(path);
  }
  proxy_add_header_map_value(0, "x-from-c", 8, "1", 1);
  return 0; // Continue
}
