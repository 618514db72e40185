;; shapes.wat: a module with every construct meter.Instrument renumbers or
;; instruments, for its tests: imported functions and a global before the
;; module's own, active, passive and declarative element segments, a
;; funcref global initialized with ref.func, a start function, loops
;; (with and without block parameters), recursion without loops, call
;; indirect, SIMD, bulk memory and a name section.
;;
;; Build: wat2wasm --debug-names shapes.wat -o shapes.wasm
(module
  (type $i2i (func (param i32) (result i32)))
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (import "globals" "g" (global $g i32))
  (import "env" "inc" (func $inc (param i32) (result i32)))
  (memory (export "memory") 1)
  (table $t 8 funcref)
  (elem (i32.const 0) $sum $fact $twice $inc)
  (elem declare func $fact)
  (elem $passive funcref (ref.func $sum) (ref.null func))
  (global $fref (mut funcref) (ref.func $fact))
  (global $counter (mut i32) (i32.const 0))
  (start $init)

  (func $init (global.set $counter (i32.const 7)))

  ;; sum(n) = 0 + 1 + ... + (n-1), with a loop.
  (func $sum (export "sum") (type $i2i) (local $i i32) (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get 0)))
        (local.set $acc (i32.add (local.get $acc) (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $acc))

  ;; fact(n), recursive.
  (func $fact (export "fact") (type $i2i)
    (if (result i32) (i32.le_s (local.get 0) (i32.const 1))
      (then (i32.const 1))
      (else (i32.mul (local.get 0) (call $fact (i32.sub (local.get 0) (i32.const 1)))))))

  ;; calls(n) = 2^n, by 2^n - 1 calls and no loop.
  (func $calls (export "calls") (type $i2i)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 1))
      (else (i32.add
        (call $calls (i32.sub (local.get 0) (i32.const 1)))
        (call $calls (i32.sub (local.get 0) (i32.const 1)))))))

  ;; indirect(i, x) = table[i](x)
  (func (export "indirect") (param i32 i32) (result i32)
    (call_indirect $t (type $i2i) (local.get 1) (local.get 0)))

  ;; via_ref(x) = fact(x), called through the funcref global.
  (func (export "via_ref") (param i32) (result i32)
    (table.set $t (i32.const 5) (global.get $fref))
    (call_indirect $t (type $i2i) (local.get 0) (i32.const 5)))

  ;; passive(x) = sum(x), called through the passive segment.
  (func (export "passive") (param i32) (result i32)
    (table.init $t $passive (i32.const 6) (i32.const 0) (i32.const 2))
    (call_indirect $t (type $i2i) (local.get 0) (i32.const 6)))

  ;; direct(x) = inc(twice(x)), calls to imports.
  (func (export "direct") (param i32) (result i32)
    (call $inc (call $twice (local.get 0))))

  (func (export "counter") (result i32) (global.get $counter))
  (func (export "imported") (result i32) (global.get $g))

  ;; triangle(n) = n + (n-1) + ... + 1 for n >= 1, with a loop carrying
  ;; the sum as a block parameter.
  (func (export "triangle") (param i32) (result i32)
    (i32.const 0)
    (loop $l (param i32) (result i32)
      (i32.add (local.get 0))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br_if $l (i32.ne (local.get 0) (i32.const 0)))))

  ;; pick(i) selects with br_table: 10, 20, 30 or 99.
  (func (export "pick") (param i32) (result i32)
    (block $d (block $c (block $b (block $a
      (br_table $a $b $c $d (local.get 0)))
      (return (i32.const 10)))
      (return (i32.const 20)))
      (return (i32.const 30)))
    (i32.const 99))

  ;; simd() = lane 2 of (1,2,3,4) + (10,20,30,40) = 33.
  (func (export "simd") (result i32)
    (i32x4.extract_lane 2
      (i32x4.add (v128.const i32x4 1 2 3 4) (v128.const i32x4 10 20 30 40))))

  ;; fill(n) fills n bytes at 16 with 7 and sums them back with a loop.
  (func (export "fill") (param i32) (result i32) (local $i i32) (local $acc i32)
    (memory.fill (i32.const 16) (i32.const 7) (local.get 0))
    (loop $l
      (if (i32.lt_u (local.get $i) (local.get 0))
        (then
          (local.set $acc (i32.add (local.get $acc) (i32.load8_u offset=16 (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l))))
    (local.get $acc))

  ;; spin loops forever; recurse calls itself forever; so does
  ;; recurse_loop, from a loop that starts its body (so that only the
  ;; loop is checked, as in Go's functions).
  (func (export "spin") (loop $l (br $l)))
  (func $recurse (export "recurse") (call $recurse))
  (func $recurse_loop (export "recurse_loop") (local i32)
    (local.set 0 (i32.const 1))
    (block (loop (call $recurse_loop))))
)
