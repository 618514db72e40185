;; probe: the filter wedgetest puts first and last in the chain to learn
;; which phases ran, so that it can tell a local response from an
;; upstream's. It reads nothing and changes nothing: each phase callback
;; logs its name at INFO and continues.
;;
;; Built with (Debian package wabt):
;;   wat2wasm sdk/wedgetest/probe.wat -o sdk/wedgetest/probe.wasm
;; (go generate ./sdk/wedgetest runs that.)
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))

  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))

  (data (i32.const 16) "request_headers")   ;; 15 bytes
  (data (i32.const 32) "request_body")      ;; 12 bytes
  (data (i32.const 48) "response_headers")  ;; 16 bytes

  (func (export "proxy_abi_version_0_2_1"))

  ;; a bump allocator that starts over when the page is used up: the host
  ;; never allocates here (the probe calls nothing that returns data)
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $size)) (i32.const 65536))
      (then (global.set $heap (i32.const 1024))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $p))

  (func (export "proxy_on_context_create") (param i32 i32))

  ;; log level 2 is INFO; action 0 is Continue
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 16) (i32.const 15)))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 32) (i32.const 12)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 48) (i32.const 16)))
    (i32.const 0))
)
