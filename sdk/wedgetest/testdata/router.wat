;; router: the wedgetest fixture, a proxy-wasm (ABI v0.2.1) filter that
;; exercises what the harness reports. By request path:
;;
;;   /deny      answers 403 "denied\n" with x-denied: 1 (a local response
;;              in proxy_on_request_headers)
;;   /api/...   sets wedge.upstream to "api"
;;   /trap      traps (unreachable): Wedge answers 500, replaces the VM
;;   /loop      never returns: callback_timeout stops it, as /trap
;;   /close     calls proxy_close_stream: the connection is reset
;;   /replace   lets the request through, then replaces the upstream's
;;              response with 502 "replaced\n" in proxy_on_response_headers
;;
;; Every request is logged (its path, at INFO) in proxy_on_request_headers
;; and "log phase" in proxy_on_log; non-empty request bodies get "!"
;; appended; responses get x-plugin: wat.
;;
;; Built with (Debian package wabt):
;;   wat2wasm sdk/wedgetest/testdata/router.wat -o sdk/wedgetest/testdata/router.wasm
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $set_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $set_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $send_local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_close_stream" (func $close_stream (param i32) (result i32)))

  (memory (export "memory") 1)
  ;; bump allocator over [4096, 65536), starting over when full: every
  ;; value the host hands us is used before the next callback
  (global $heap (mut i32) (i32.const 4096))
  ;; the request path, after $load_path
  (global $p (mut i32) (i32.const 0))
  (global $n (mut i32) (i32.const 0))

  ;; scratch: 0 = returned pointer, 4 = returned size
  (data (i32.const 64) ":path")                 ;; 5
  (data (i32.const 80) "wedge.upstream")        ;; 14
  (data (i32.const 96) "api")                   ;; 3
  (data (i32.const 112) "/api/")                ;; 5
  (data (i32.const 128) "/deny")                ;; 5
  (data (i32.const 144) "denied\n")             ;; 7
  ;; a serialized map of one pair, x-denied: 1 (24 bytes)
  (data (i32.const 160) "\01\00\00\00\08\00\00\00\01\00\00\00x-denied\001\00")
  (data (i32.const 192) "/trap")                ;; 5
  (data (i32.const 208) "/close")               ;; 6
  (data (i32.const 224) "/replace")             ;; 8
  (data (i32.const 240) "x-plugin")             ;; 8
  (data (i32.const 256) "wat")                  ;; 3
  (data (i32.const 272) "!")                    ;; 1
  (data (i32.const 288) "log phase")            ;; 9
  (data (i32.const 304) "replaced\n")           ;; 9
  (data (i32.const 320) "blocked_by_plugin")    ;; 17
  (data (i32.const 368) "/loop")                ;; 5
  ;; 352: an empty serialized map (4 zero bytes, never written)

  (func (export "proxy_abi_version_0_2_1"))

  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $ptr i32)
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $size)) (i32.const 65536))
      (then (global.set $heap (i32.const 4096))))
    (local.set $ptr (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $ptr))

  (func (export "proxy_on_context_create") (param i32 i32))

  ;; $load_path reads :path of the request (map 0) into $p, $n.
  (func $load_path
    (global.set $n (i32.const 0))
    (if (i32.eqz (call $get_header (i32.const 0) (i32.const 64) (i32.const 5) (i32.const 0) (i32.const 4)))
      (then
        (global.set $p (i32.load (i32.const 0)))
        (global.set $n (i32.load (i32.const 4))))))

  ;; $starts reports whether the path starts with the n bytes at c.
  (func $starts (param $c i32) (param $len i32) (result i32)
    (local $i i32)
    (if (i32.lt_u (global.get $n) (local.get $len)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.ne (i32.load8_u (i32.add (global.get $p) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $c) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; $is reports whether the path is the n bytes at c.
  (func $is (param $c i32) (param $len i32) (result i32)
    (if (result i32) (i32.eq (global.get $n) (local.get $len))
      (then (call $starts (local.get $c) (local.get $len)))
      (else (i32.const 0))))

  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $load_path)
    (drop (call $log (i32.const 2) (global.get $p) (global.get $n)))
    (if (call $is (i32.const 128) (i32.const 5))
      (then
        (drop (call $send_local (i32.const 403) (i32.const 320) (i32.const 17)
          (i32.const 144) (i32.const 7) (i32.const 160) (i32.const 24) (i32.const -1)))
        (return (i32.const 1))))
    (if (call $is (i32.const 192) (i32.const 5)) (then unreachable))
    (if (call $is (i32.const 368) (i32.const 5)) (then (loop $forever (br $forever))))
    (if (call $is (i32.const 208) (i32.const 6))
      (then
        (drop (call $close_stream (i32.const 0)))
        (return (i32.const 1))))
    (if (call $starts (i32.const 112) (i32.const 5))
      (then (drop (call $set_property (i32.const 80) (i32.const 14) (i32.const 96) (i32.const 3)))))
    (i32.const 0))

  ;; buffer 0 is the request body: append "!" at its end
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (if (i32.gt_u (local.get 1) (i32.const 0))
      (then (drop (call $set_buffer (i32.const 0) (local.get 1) (i32.const 0) (i32.const 272) (i32.const 1)))))
    (i32.const 0))

  ;; map 2 is the response headers
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (call $load_path)
    (if (call $is (i32.const 224) (i32.const 8))
      (then
        (drop (call $send_local (i32.const 502) (i32.const 320) (i32.const 17)
          (i32.const 304) (i32.const 9) (i32.const 352) (i32.const 4) (i32.const -1)))
        (return (i32.const 1))))
    (drop (call $add_header (i32.const 2) (i32.const 240) (i32.const 8) (i32.const 256) (i32.const 3)))
    (i32.const 0))

  (func (export "proxy_on_log") (param i32)
    (drop (call $log (i32.const 2) (i32.const 288) (i32.const 9))))
)
