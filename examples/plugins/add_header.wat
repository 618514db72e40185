;; add_header: the smallest useful proxy-wasm (ABI v0.2.1) filter, in
;; WebAssembly text. It adds "x-wedge-example: <config>" to every request
;; it sees, where <config> is its plugin configuration (the JSON that
;; Wedge made from the plugin's `config:` in wedge.yaml), or "hello" when
;; it has none.
;;
;; Built with (Debian package wabt):
;;   wat2wasm examples/plugins/add_header.wat -o examples/plugins/add_header.wasm
;; `task plugins:examples` runs that for you.
(module
  (import "env" "proxy_add_header_map_value"
    (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes"
    (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 2)
  ;; a bump allocator: enough for a filter that never frees
  (global $heap (mut i32) (i32.const 4096))
  (global $cfg_ptr (mut i32) (i32.const 0))
  (global $cfg_len (mut i32) (i32.const 0))

  (data (i32.const 16) "x-wedge-example")  ;; 15 bytes
  (data (i32.const 32) "hello")            ;; 5 bytes

  (func (export "proxy_abi_version_0_2_1"))

  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $p))

  (func (export "proxy_on_context_create") (param i32 i32))

  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))

  ;; keep the plugin configuration (buffer type 7) as the header value
  (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
    (if (i32.gt_u (local.get $size) (i32.const 0))
      (then
        ;; results go to scratch memory at 48 (pointer) and 52 (length)
        (drop (call $get_buffer (i32.const 7) (i32.const 0) (local.get $size) (i32.const 48) (i32.const 52)))
        (global.set $cfg_ptr (i32.load (i32.const 48)))
        (global.set $cfg_len (i32.load (i32.const 52)))))
    (i32.const 1))

  ;; map type 0 is the request headers; action 0 is Continue
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (i32.eqz (global.get $cfg_len))
      (then (drop (call $add_header (i32.const 0) (i32.const 16) (i32.const 15) (i32.const 32) (i32.const 5))))
      (else (drop (call $add_header (i32.const 0) (i32.const 16) (i32.const 15) (global.get $cfg_ptr) (global.get $cfg_len)))))
    (i32.const 0))
)
