;; PowerSGD's passes over a gradient matrix (low-rank.ts), in WebAssembly with 128-bit SIMD. Each
;; does the same floating-point operations in the same order as its JavaScript twin, so both give
;; the same bits: f64 products and sums of f32 values, one sum per output element in row or column
;; order, the lanes of a vector being different outputs. Built into low-rank-wasm.ts by
;; `npm run build:wasm`.
;;
;; Memory is imported; pointers are byte addresses, counts elements. Matrices are row-major: M is
;; rows × cols, P rows × r, Q cols × r.
(module
  (import "env" "memory" (memory 1))

  ;; m[i] = g[i] + res[i] (f32) for i in [0, n).
  (func $add (param $g i32) (param $res i32) (param $m i32) (param $n i32)
    (local $i i32) (local $end i32)
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store (i32.add (local.get $m) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $g) (local.get $i)))
                     (v128.load (i32.add (local.get $res) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (f32.store (i32.add (local.get $m) (local.get $i))
          (f32.add (f32.load (i32.add (local.get $g) (local.get $i)))
                   (f32.load (i32.add (local.get $res) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next))))

  ;; For each of `rows` rows: m = g + res, then P[i][t] = sum over j of m[i][j]·Q[j][t] (f64 in
  ;; order of j, stored as f32). r columns of P four at a time, as two f64x2 accumulators, the last
  ;; r mod 4 one at a time.
  (func (export "project")
    (param $g i32) (param $res i32) (param $m i32) (param $rows i32) (param $cols i32)
    (param $q i32) (param $r i32) (param $p i32)
    (local $i i32) (local $row i32) (local $rowBytes i32) (local $qStride i32) (local $wide i32)
    (local $t i32) (local $j i32) (local $qj i32) (local $pi i32)
    (local $x v128) (local $qv v128) (local $a v128) (local $b v128) (local $s f64)
    (local.set $rowBytes (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $qStride (i32.shl (local.get $r) (i32.const 2)))
    (local.set $wide (i32.and (local.get $r) (i32.const -4)))
    (block $rowsDone
      (loop $nextRow
        (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $row (i32.mul (local.get $i) (local.get $rowBytes)))
        (call $add (i32.add (local.get $g) (local.get $row)) (i32.add (local.get $res) (local.get $row))
          (i32.add (local.get $m) (local.get $row)) (local.get $cols))
        (local.set $row (i32.add (local.get $m) (local.get $row)))
        (local.set $pi (i32.add (local.get $p) (i32.mul (local.get $i) (local.get $qStride))))
        (local.set $t (i32.const 0))
        (block $wideDone
          (loop $nextWide
            (br_if $wideDone (i32.ge_u (local.get $t) (local.get $wide)))
            (local.set $a (f64x2.splat (f64.const 0)))
            (local.set $b (f64x2.splat (f64.const 0)))
            (local.set $j (i32.const 0))
            (local.set $qj (i32.add (local.get $q) (i32.shl (local.get $t) (i32.const 2))))
            (block $colsDone
              (loop $nextCol
                (br_if $colsDone (i32.ge_u (local.get $j) (local.get $cols)))
                (local.set $x (f64x2.splat (f64.promote_f32
                  (f32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2)))))))
                (local.set $qv (v128.load (local.get $qj)))
                (local.set $a (f64x2.add (local.get $a)
                  (f64x2.mul (local.get $x) (f64x2.promote_low_f32x4 (local.get $qv)))))
                (local.set $b (f64x2.add (local.get $b)
                  (f64x2.mul (local.get $x) (f64x2.promote_low_f32x4
                    (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $qv) (local.get $qv))))))
                (local.set $qj (i32.add (local.get $qj) (local.get $qStride)))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $nextCol)))
            (v128.store64_lane 0 (i32.add (local.get $pi) (i32.shl (local.get $t) (i32.const 2)))
              (f32x4.demote_f64x2_zero (local.get $a)))
            (v128.store64_lane offset=8 0 (i32.add (local.get $pi) (i32.shl (local.get $t) (i32.const 2)))
              (f32x4.demote_f64x2_zero (local.get $b)))
            (local.set $t (i32.add (local.get $t) (i32.const 4)))
            (br $nextWide)))
        (block $tailDone
          (loop $nextTail
            (br_if $tailDone (i32.ge_u (local.get $t) (local.get $r)))
            (local.set $s (f64.const 0))
            (local.set $j (i32.const 0))
            (local.set $qj (i32.add (local.get $q) (i32.shl (local.get $t) (i32.const 2))))
            (block $colsDone
              (loop $nextCol
                (br_if $colsDone (i32.ge_u (local.get $j) (local.get $cols)))
                (local.set $s (f64.add (local.get $s)
                  (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2)))))
                           (f64.promote_f32 (f32.load (local.get $qj))))))
                (local.set $qj (i32.add (local.get $qj) (local.get $qStride)))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $nextCol)))
            (f32.store (i32.add (local.get $pi) (i32.shl (local.get $t) (i32.const 2))) (f32.demote_f64 (local.get $s)))
            (local.set $t (i32.add (local.get $t) (i32.const 1)))
            (br $nextTail)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $nextRow))))

  ;; acc[j][t] += m[i][j]·P[i][t] for each of `rows` rows in order (acc: cols × r f64, which the
  ;; caller zeroes first and rounds into Q after the last row).
  (func (export "transpose")
    (param $m i32) (param $rows i32) (param $cols i32) (param $p i32) (param $r i32) (param $acc i32)
    (local $i i32) (local $row i32) (local $pi i32) (local $accStride i32) (local $wide i32)
    (local $t i32) (local $j i32) (local $aj i32) (local $x v128) (local $pa v128) (local $pb v128) (local $pt f64)
    (local.set $accStride (i32.shl (local.get $r) (i32.const 3)))
    (local.set $wide (i32.and (local.get $r) (i32.const -4)))
    (block $rowsDone
      (loop $nextRow
        (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $row (i32.add (local.get $m) (i32.shl (i32.mul (local.get $i) (local.get $cols)) (i32.const 2))))
        (local.set $pi (i32.add (local.get $p) (i32.shl (i32.mul (local.get $i) (local.get $r)) (i32.const 2))))
        (local.set $t (i32.const 0))
        (block $wideDone
          (loop $nextWide
            (br_if $wideDone (i32.ge_u (local.get $t) (local.get $wide)))
            (local.set $pa (f64x2.promote_low_f32x4
              (v128.load64_zero (i32.add (local.get $pi) (i32.shl (local.get $t) (i32.const 2))))))
            (local.set $pb (f64x2.promote_low_f32x4
              (v128.load64_zero offset=8 (i32.add (local.get $pi) (i32.shl (local.get $t) (i32.const 2))))))
            (local.set $j (i32.const 0))
            (local.set $aj (i32.add (local.get $acc) (i32.shl (local.get $t) (i32.const 3))))
            (block $colsDone
              (loop $nextCol
                (br_if $colsDone (i32.ge_u (local.get $j) (local.get $cols)))
                (local.set $x (f64x2.splat (f64.promote_f32
                  (f32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2)))))))
                (v128.store (local.get $aj)
                  (f64x2.add (v128.load (local.get $aj)) (f64x2.mul (local.get $x) (local.get $pa))))
                (v128.store offset=16 (local.get $aj)
                  (f64x2.add (v128.load offset=16 (local.get $aj)) (f64x2.mul (local.get $x) (local.get $pb))))
                (local.set $aj (i32.add (local.get $aj) (local.get $accStride)))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $nextCol)))
            (local.set $t (i32.add (local.get $t) (i32.const 4)))
            (br $nextWide)))
        (block $tailDone
          (loop $nextTail
            (br_if $tailDone (i32.ge_u (local.get $t) (local.get $r)))
            (local.set $pt (f64.promote_f32 (f32.load (i32.add (local.get $pi) (i32.shl (local.get $t) (i32.const 2))))))
            (local.set $j (i32.const 0))
            (local.set $aj (i32.add (local.get $acc) (i32.shl (local.get $t) (i32.const 3))))
            (block $colsDone
              (loop $nextCol
                (br_if $colsDone (i32.ge_u (local.get $j) (local.get $cols)))
                (f64.store (local.get $aj) (f64.add (f64.load (local.get $aj))
                  (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2)))))
                           (local.get $pt))))
                (local.set $aj (i32.add (local.get $aj) (local.get $accStride)))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $nextCol)))
            (local.set $t (i32.add (local.get $t) (i32.const 1)))
            (br $nextTail)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $nextRow))))

  ;; The r = 4 case of the decompression, for each of `rows` rows: out[i][j] = P[i]·Q[j] and
  ;; m[i][j] -= P[i]·Qown[j], each dot product as ((p0q0 + p1q1) + p2q2) + p3q3 in f64. Q and Qown
  ;; come transposed (qT[t][j] = Q[j][t], 4 rows of cols), so four columns j are the lanes of two
  ;; f64x2 vectors. Returns 1 when every out value is finite (as f32).
  (func (export "decompress4")
    (param $p i32) (param $qT i32) (param $qOwnT i32) (param $rows i32) (param $cols i32) (param $out i32) (param $m i32)
    (result i32)
    (local $i i32) (local $jb i32) (local $quadBytes i32) (local $colBytes i32) (local $row i32) (local $pi i32)
    (local $q0 i32) (local $q1 i32) (local $q2 i32) (local $q3 i32)
    (local $o0 i32) (local $o1 i32) (local $o2 i32) (local $o3 i32)
    (local $p0 v128) (local $p1 v128) (local $p2 v128) (local $p3 v128)
    (local $v v128) (local $lo v128) (local $hi v128) (local $mlo v128) (local $mhi v128) (local $o v128) (local $mv v128)
    (local $ok v128) (local $max v128)
    (local $s0 f64) (local $s1 f64) (local $s2 f64) (local $s3 f64) (local $x f64)
    (local.set $ok (v128.const i32x4 -1 -1 -1 -1))
    (local.set $max (f32x4.splat (f32.const 0x1.fffffep+127)))
    (local.set $colBytes (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $quadBytes (i32.shl (i32.and (local.get $cols) (i32.const -4)) (i32.const 2)))
    (local.set $q0 (local.get $qT))
    (local.set $q1 (i32.add (local.get $q0) (local.get $colBytes)))
    (local.set $q2 (i32.add (local.get $q1) (local.get $colBytes)))
    (local.set $q3 (i32.add (local.get $q2) (local.get $colBytes)))
    (local.set $o0 (local.get $qOwnT))
    (local.set $o1 (i32.add (local.get $o0) (local.get $colBytes)))
    (local.set $o2 (i32.add (local.get $o1) (local.get $colBytes)))
    (local.set $o3 (i32.add (local.get $o2) (local.get $colBytes)))
    (block $rowsDone
      (loop $nextRow
        (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $pi (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 4))))
        (local.set $s0 (f64.promote_f32 (f32.load (local.get $pi))))
        (local.set $s1 (f64.promote_f32 (f32.load offset=4 (local.get $pi))))
        (local.set $s2 (f64.promote_f32 (f32.load offset=8 (local.get $pi))))
        (local.set $s3 (f64.promote_f32 (f32.load offset=12 (local.get $pi))))
        (local.set $p0 (f64x2.splat (local.get $s0)))
        (local.set $p1 (f64x2.splat (local.get $s1)))
        (local.set $p2 (f64x2.splat (local.get $s2)))
        (local.set $p3 (f64x2.splat (local.get $s3)))
        (local.set $row (i32.mul (local.get $i) (local.get $colBytes)))
        (local.set $jb (i32.const 0))
        (block $quadsDone
          (loop $nextQuad
            (br_if $quadsDone (i32.ge_u (local.get $jb) (local.get $quadBytes)))
        (local.set $v (v128.load (i32.add (local.get $q0) (local.get $jb))))
        (local.set $lo (f64x2.mul (local.get $p0) (f64x2.promote_low_f32x4 (local.get $v))))
        (local.set $hi (f64x2.mul (local.get $p0) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))))
        (local.set $v (v128.load (i32.add (local.get $q1) (local.get $jb))))
        (local.set $lo (f64x2.add (local.get $lo) (f64x2.mul (local.get $p1) (f64x2.promote_low_f32x4 (local.get $v)))))
        (local.set $hi (f64x2.add (local.get $hi) (f64x2.mul (local.get $p1) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))))))
        (local.set $v (v128.load (i32.add (local.get $q2) (local.get $jb))))
        (local.set $lo (f64x2.add (local.get $lo) (f64x2.mul (local.get $p2) (f64x2.promote_low_f32x4 (local.get $v)))))
        (local.set $hi (f64x2.add (local.get $hi) (f64x2.mul (local.get $p2) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))))))
        (local.set $v (v128.load (i32.add (local.get $q3) (local.get $jb))))
        (local.set $lo (f64x2.add (local.get $lo) (f64x2.mul (local.get $p3) (f64x2.promote_low_f32x4 (local.get $v)))))
        (local.set $hi (f64x2.add (local.get $hi) (f64x2.mul (local.get $p3) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))))))
            (local.set $o (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (f32x4.demote_f64x2_zero (local.get $lo)) (f32x4.demote_f64x2_zero (local.get $hi))))
            (v128.store (i32.add (local.get $out) (i32.add (local.get $row) (local.get $jb))) (local.get $o))
            (local.set $ok (v128.and (local.get $ok) (f32x4.le (f32x4.abs (local.get $o)) (local.get $max))))
        (local.set $v (v128.load (i32.add (local.get $o0) (local.get $jb))))
        (local.set $lo (f64x2.mul (local.get $p0) (f64x2.promote_low_f32x4 (local.get $v))))
        (local.set $hi (f64x2.mul (local.get $p0) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))))
        (local.set $v (v128.load (i32.add (local.get $o1) (local.get $jb))))
        (local.set $lo (f64x2.add (local.get $lo) (f64x2.mul (local.get $p1) (f64x2.promote_low_f32x4 (local.get $v)))))
        (local.set $hi (f64x2.add (local.get $hi) (f64x2.mul (local.get $p1) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))))))
        (local.set $v (v128.load (i32.add (local.get $o2) (local.get $jb))))
        (local.set $lo (f64x2.add (local.get $lo) (f64x2.mul (local.get $p2) (f64x2.promote_low_f32x4 (local.get $v)))))
        (local.set $hi (f64x2.add (local.get $hi) (f64x2.mul (local.get $p2) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))))))
        (local.set $v (v128.load (i32.add (local.get $o3) (local.get $jb))))
        (local.set $lo (f64x2.add (local.get $lo) (f64x2.mul (local.get $p3) (f64x2.promote_low_f32x4 (local.get $v)))))
        (local.set $hi (f64x2.add (local.get $hi) (f64x2.mul (local.get $p3) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))))))
            (local.set $mv (v128.load (i32.add (local.get $m) (i32.add (local.get $row) (local.get $jb)))))
            (local.set $mlo (f64x2.sub (f64x2.promote_low_f32x4 (local.get $mv)) (local.get $lo)))
            (local.set $mhi (f64x2.sub (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $mv) (local.get $mv))) (local.get $hi)))
            (v128.store (i32.add (local.get $m) (i32.add (local.get $row) (local.get $jb)))
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (f32x4.demote_f64x2_zero (local.get $mlo)) (f32x4.demote_f64x2_zero (local.get $mhi))))
            (local.set $jb (i32.add (local.get $jb) (i32.const 16)))
            (br $nextQuad)))
        ;; The last cols mod 4 columns, one at a time.
        (block $tailDone
          (loop $nextTail
            (br_if $tailDone (i32.ge_u (local.get $jb) (local.get $colBytes)))
            (local.set $x (f64.add (f64.add (f64.add (f64.mul (local.get $s0) (f64.promote_f32 (f32.load (i32.add (local.get $q0) (local.get $jb))))) (f64.mul (local.get $s1) (f64.promote_f32 (f32.load (i32.add (local.get $q1) (local.get $jb)))))) (f64.mul (local.get $s2) (f64.promote_f32 (f32.load (i32.add (local.get $q2) (local.get $jb)))))) (f64.mul (local.get $s3) (f64.promote_f32 (f32.load (i32.add (local.get $q3) (local.get $jb)))))))
            (f32.store (i32.add (local.get $out) (i32.add (local.get $row) (local.get $jb))) (f32.demote_f64 (local.get $x)))
            (if (i32.eqz (f32.le (f32.abs (f32.demote_f64 (local.get $x))) (f32.const 0x1.fffffep+127)))
              (then (local.set $ok (v128.const i32x4 0 0 0 0))))
            (f32.store (i32.add (local.get $m) (i32.add (local.get $row) (local.get $jb)))
              (f32.demote_f64 (f64.sub
                (f64.promote_f32 (f32.load (i32.add (local.get $m) (i32.add (local.get $row) (local.get $jb)))))
                (f64.add (f64.add (f64.add (f64.mul (local.get $s0) (f64.promote_f32 (f32.load (i32.add (local.get $o0) (local.get $jb))))) (f64.mul (local.get $s1) (f64.promote_f32 (f32.load (i32.add (local.get $o1) (local.get $jb)))))) (f64.mul (local.get $s2) (f64.promote_f32 (f32.load (i32.add (local.get $o2) (local.get $jb)))))) (f64.mul (local.get $s3) (f64.promote_f32 (f32.load (i32.add (local.get $o3) (local.get $jb)))))))))
            (local.set $jb (i32.add (local.get $jb) (i32.const 4)))
            (br $nextTail)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $nextRow)))
    (i32x4.all_true (local.get $ok)))
)
