;; The pass of the top-k selection that touches every element, in WebAssembly with 128-bit SIMD
;; (the JavaScript loop it replaces runs about 2.5 times slower). Built into top-k-wasm.ts by
;; `npm run build:wasm`; the tests check that the two agree.
;;
;; Memory is imported, so the caller sizes it and keeps Float32Array views of it. All pointers are
;; byte addresses, all counts elements.
(module
  (import "env" "memory" (memory 1))

  ;; Appends (base + i, s[i]) for i in [from, to) where !(|s[i]| < thr) (NaN passes) to at/vals
  ;; while count < cap, and counts past cap without storing. Returns the new count.
  (func $scan (param $s i32) (param $from i32) (param $to i32) (param $thr f32)
    (param $at i32) (param $vals i32) (param $count i32) (param $cap i32) (param $base i32)
    (result i32)
    (local $x f32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $from) (local.get $to)))
        (local.set $x (f32.load (i32.add (local.get $s) (i32.shl (local.get $from) (i32.const 2)))))
        (if (i32.eqz (f32.lt (f32.abs (local.get $x)) (local.get $thr)))
          (then
            (if (i32.lt_u (local.get $count) (local.get $cap))
              (then
                (i32.store (i32.add (local.get $at) (i32.shl (local.get $count) (i32.const 2)))
                           (i32.add (local.get $base) (local.get $from)))
                (f32.store (i32.add (local.get $vals) (i32.shl (local.get $count) (i32.const 2)))
                           (local.get $x))))
            (local.set $count (i32.add (local.get $count) (i32.const 1)))))
        (local.set $from (i32.add (local.get $from) (i32.const 1)))
        (br $next)))
    (local.get $count))

  ;; s[i] = g[i] + r[i] (fp32) for i in [0, n), and scan's collection of those that reach thr,
  ;; with base + i as their index. Eight elements a turn, one test for all eight; only a group in
  ;; which some element reaches the threshold is scanned one by one.
  (func (export "addCollect")
    (param $g i32) (param $r i32) (param $s i32) (param $n i32) (param $thr f32)
    (param $at i32) (param $vals i32) (param $count i32) (param $cap i32) (param $base i32)
    (result i32)
    (local $i i32) (local $end i32) (local $x v128) (local $y v128) (local $t v128)
    (local.set $t (f32x4.splat (local.get $thr)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $x (f32x4.add (v128.load (i32.add (local.get $g) (local.get $i)))
                                 (v128.load (i32.add (local.get $r) (local.get $i)))))
        (local.set $y (f32x4.add (v128.load offset=16 (i32.add (local.get $g) (local.get $i)))
                                 (v128.load offset=16 (i32.add (local.get $r) (local.get $i)))))
        (v128.store (i32.add (local.get $s) (local.get $i)) (local.get $x))
        (v128.store offset=16 (i32.add (local.get $s) (local.get $i)) (local.get $y))
        (if (i32.eqz (i32x4.all_true (v128.and (f32x4.lt (f32x4.abs (local.get $x)) (local.get $t))
                                               (f32x4.lt (f32x4.abs (local.get $y)) (local.get $t)))))
          (then
            (local.set $count
              (call $scan (local.get $s) (i32.shr_u (local.get $i) (i32.const 2))
                (i32.add (i32.shr_u (local.get $i) (i32.const 2)) (i32.const 8))
                (local.get $thr) (local.get $at) (local.get $vals) (local.get $count) (local.get $cap)
                (local.get $base)))))
        (local.set $i (i32.add (local.get $i) (i32.const 32)))
        (br $next)))
    ;; The last n mod 8, one by one.
    (local.set $i (i32.shr_u (local.get $end) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (f32.store (i32.add (local.get $s) (i32.shl (local.get $i) (i32.const 2)))
          (f32.add (f32.load (i32.add (local.get $g) (i32.shl (local.get $i) (i32.const 2))))
                   (f32.load (i32.add (local.get $r) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $scan (local.get $s) (i32.shr_u (local.get $end) (i32.const 2)) (local.get $n)
      (local.get $thr) (local.get $at) (local.get $vals) (local.get $count) (local.get $cap) (local.get $base)))
)
