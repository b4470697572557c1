// search/ctl_vmath.h — exp, sigmoid and tanh over float arrays with GCC/Clang
// vector extensions (no intrinsics): 4 lanes for any x86-64 (SSE2, the
// baseline), and 8 lanes with FMA in functions compiled for AVX2, chosen at
// run time when the CPU has it.
//
// Why: glibc's scalar expf/tanhf took ~40% of the controller's training time.
// Accuracy: exp is Cephes' expf polynomial after range reduction (about 1 ulp
// over [-87, 88]); sigmoid is 1 / (1 + exp(-x)); tanh is 2 sigmoid(2x) - 1
// (absolute error about 1e-7). Inputs are clamped to [-87.34, 88] so that no
// lane overflows (exp of less than -87.34 gives 1.2e-38, the smallest normal,
// instead of a denormal or 0). NaN is not expected here. Every element of an
// array goes through the same vector code (the tail is padded), so a value
// does not depend on its position. The 4- and 8-lane code give identical
// results: the build's -std=c11 implies -ffp-contract=off, so no multiply-add
// is fused (tested implicitly: results do not change with the CPU).
#ifndef NAO_CTL_VMATH_H
#define NAO_CTL_VMATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// One width: vector types VF/VI of W lanes, functions with suffix SUF and the
// attribute ATTR (a target or nothing).
#define CTL_VMATH_DEFINE(SUF, W, ATTR)                                                     \
  typedef float ctl_vf##SUF __attribute__((vector_size(4 * W)));                          \
  typedef int32_t ctl_vi##SUF __attribute__((vector_size(4 * W)));                        \
  ATTR static inline ctl_vf##SUF ctl_vsel##SUF(ctl_vi##SUF m, ctl_vf##SUF a, ctl_vf##SUF b) { \
    return (ctl_vf##SUF)(((ctl_vi##SUF)a & m) | ((ctl_vi##SUF)b & ~m));                   \
  }                                                                                        \
  ATTR static inline ctl_vf##SUF ctl_vexp##SUF(ctl_vf##SUF x) {                            \
    ctl_vf##SUF hi = x - x + 88.0f, lo = x - x - 87.3365447504f;                           \
    x = ctl_vsel##SUF(x > hi, hi, x); /* 2^127 at most */                                  \
    x = ctl_vsel##SUF(x < lo, lo, x);                                                      \
    ctl_vf##SUF t = x * 1.44269504088896341f + 0.5f;                                       \
    ctl_vf##SUF fl = __builtin_convertvector(__builtin_convertvector(t, ctl_vi##SUF), ctl_vf##SUF); \
    fl += __builtin_convertvector(fl > t, ctl_vf##SUF); /* truncation -> floor */          \
    ctl_vf##SUF r = x - fl * 0.693359375f - fl * -2.12194440e-4f;                          \
    ctl_vf##SUF p = r * 1.9875691500e-4f + 1.3981999507e-3f;                               \
    p = p * r + 8.3334519073e-3f;                                                          \
    p = p * r + 4.1665795894e-2f;                                                          \
    p = p * r + 1.6666665459e-1f;                                                          \
    p = p * r + 5.0000001201e-1f;                                                          \
    p = p * r * r + r + 1.0f;                                                              \
    ctl_vi##SUF e = (__builtin_convertvector(fl, ctl_vi##SUF) + 127) << 23;                \
    return p * (ctl_vf##SUF)e;                                                             \
  }                                                                                        \
  ATTR static inline ctl_vf##SUF ctl_vsigmoid##SUF(ctl_vf##SUF x) {                        \
    return 1.0f / (ctl_vexp##SUF(-x) + 1.0f);                                              \
  }                                                                                        \
  ATTR static inline ctl_vf##SUF ctl_vtanh##SUF(ctl_vf##SUF x) {                           \
    return 2.0f / (ctl_vexp##SUF(-(x + x)) + 1.0f) - 1.0f;                                 \
  }

// The in-place array map of f over n floats, W lanes at a time.
#define CTL_VMATH_MAP(NAME, SUF, W, ATTR, F)                \
  ATTR static inline void NAME(float *x, size_t n) {        \
    size_t i = 0;                                           \
    for (; i + W <= n; i += W) {                            \
      ctl_vf##SUF v;                                        \
      memcpy(&v, x + i, sizeof v);                          \
      v = F(v);                                             \
      memcpy(x + i, &v, sizeof v);                          \
    }                                                       \
    if (i < n) {                                            \
      ctl_vf##SUF v;                                        \
      memset(&v, 0, sizeof v);                              \
      memcpy(&v, x + i, (n - i) * sizeof(float));           \
      v = F(v);                                             \
      memcpy(x + i, &v, (n - i) * sizeof(float));           \
    }                                                       \
  }

// One LSTM step's nonlinearities for one row, in one pass: g (4h) holds the
// gate pre-activations i, f, g, o on entry and the activated gates on return;
// c = f * cp + i * g (cp NULL: zeros), tc = tanh(c), hh = o * tc.
#define CTL_VMATH_CELL(NAME, SUF, W, ATTR)                                                        \
  ATTR static inline void NAME##_w(int h, float *g, const float *cp, float *c, float *tc, float *hh,  \
                                   int j) { /* lanes j .. j+W-1, all inside the row */               \
    ctl_vf##SUF gi, gf, gg, go, cv;                                                              \
    memcpy(&gi, g + j, sizeof gi), memcpy(&gf, g + h + j, sizeof gf);                             \
    memcpy(&gg, g + 2 * h + j, sizeof gg), memcpy(&go, g + 3 * h + j, sizeof go);                 \
    if (cp) memcpy(&cv, cp + j, sizeof cv);                                                      \
    else cv = gi - gi;                                                                           \
    gi = ctl_vsigmoid##SUF(gi), gf = ctl_vsigmoid##SUF(gf), gg = ctl_vtanh##SUF(gg);              \
    go = ctl_vsigmoid##SUF(go);                                                                  \
    cv = gf * cv + gi * gg;                                                                      \
    ctl_vf##SUF t = ctl_vtanh##SUF(cv), hv = go * t;                                             \
    memcpy(g + j, &gi, sizeof gi), memcpy(g + h + j, &gf, sizeof gf);                             \
    memcpy(g + 2 * h + j, &gg, sizeof gg), memcpy(g + 3 * h + j, &go, sizeof go);                 \
    memcpy(c + j, &cv, sizeof cv), memcpy(tc + j, &t, sizeof t), memcpy(hh + j, &hv, sizeof hv);  \
  }                                                                                              \
  ATTR static inline void NAME(int h, float *g, const float *cp, float *c, float *tc, float *hh) { \
    int j = 0;                                                                                   \
    for (; j + W <= h; j += W) NAME##_w(h, g, cp, c, tc, hh, j);                                 \
    if (j < h) { /* the tail through a padded copy of the row */                                 \
      float pg[4 * W] = {0}, pc[W] = {0}, oc[W], ot[W], oh[W];                                   \
      int k = h - j;                                                                             \
      for (int q = 0; q < 4; q++) memcpy(pg + q * W, g + q * h + j, (size_t)k * sizeof(float));  \
      if (cp) memcpy(pc, cp + j, (size_t)k * sizeof(float));                                     \
      NAME##_w(W, pg, cp ? pc : NULL, oc, ot, oh, 0);                                            \
      for (int q = 0; q < 4; q++) memcpy(g + q * h + j, pg + q * W, (size_t)k * sizeof(float));  \
      memcpy(c + j, oc, (size_t)k * sizeof(float)), memcpy(tc + j, ot, (size_t)k * sizeof(float)); \
      memcpy(hh + j, oh, (size_t)k * sizeof(float));                                             \
    }                                                                                            \
  }

CTL_VMATH_DEFINE(4, 4, )
CTL_VMATH_MAP(ctl_vexp_sse, 4, 4, , ctl_vexp4)
CTL_VMATH_MAP(ctl_vsigmoid_sse, 4, 4, , ctl_vsigmoid4)
CTL_VMATH_MAP(ctl_vtanh_sse, 4, 4, , ctl_vtanh4)
CTL_VMATH_CELL(ctl_lstm_cell_sse, 4, 4, )

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CTL_AVX2 __attribute__((target("avx2,fma")))
CTL_VMATH_DEFINE(8, 8, CTL_AVX2)
CTL_VMATH_MAP(ctl_vexp_avx2, 8, 8, CTL_AVX2, ctl_vexp8)
CTL_VMATH_MAP(ctl_vsigmoid_avx2, 8, 8, CTL_AVX2, ctl_vsigmoid8)
CTL_VMATH_MAP(ctl_vtanh_avx2, 8, 8, CTL_AVX2, ctl_vtanh8)
CTL_VMATH_CELL(ctl_lstm_cell_avx2, 8, 8, CTL_AVX2)
static inline int ctl_have_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#define CTL_VDISPATCH(name, x, n) (ctl_have_avx2() ? name##_avx2(x, n) : name##_sse(x, n))
#define CTL_CELL_DISPATCH (ctl_have_avx2() ? ctl_lstm_cell_avx2 : ctl_lstm_cell_sse)
#else
#define CTL_VDISPATCH(name, x, n) name##_sse(x, n)
#define CTL_CELL_DISPATCH ctl_lstm_cell_sse
#endif

static inline void ctl_vexp_f32(float *x, size_t n) { CTL_VDISPATCH(ctl_vexp, x, n); }
static inline void ctl_vsigmoid_f32(float *x, size_t n) { CTL_VDISPATCH(ctl_vsigmoid, x, n); }
static inline void ctl_vtanh_f32(float *x, size_t n) { CTL_VDISPATCH(ctl_vtanh, x, n); }
static inline void ctl_lstm_cell_f32(int h, float *g, const float *cp, float *c, float *tc, float *hh) {
  CTL_CELL_DISPATCH(h, g, cp, c, tc, hh);
}

#endif
