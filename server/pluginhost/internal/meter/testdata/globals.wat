;; globals.wat: exports the global shapes.wasm imports.
;; Build: wat2wasm globals.wat -o globals.wasm
(module (global (export "g") i32 (i32.const 42)))
