// runtime/cpu_conv_avx2.c — direct dense convolution with AVX2 + FMA, chosen at
// run time on CPUs that have them (the build targets baseline x86-64; only
// these functions are compiled for AVX2). Serves the forward pass and, through
// the transposed-and-flipped filter, the stride-1 backward data pass.
//
// Per sample (one task): the input is copied into a per-thread zero-padded
// image covering every window, its columns split into `sw` phases so that the
// inputs of 8 consecutive outputs of a row are 8 consecutive floats for any
// tap; then tiles of 4 output channels x 3 vectors of 8 output pixels keep 12
// accumulators in registers while one flat loop runs over (input channel, tap)
// pairs with precomputed offsets (3 loads, 4 broadcasts, 12 FMAs a step). Weights are packed once per call as
// [co/4][ci][kh][kw][4]. Each output is summed over (ci, ky, kx) in order by one
// task, so results do not depend on the thread count; they differ from the
// GEMM path's rounding (FMA, another order).
#include <stdatomic.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/cpu_conv_internal.h"
#include "runtime/cpu_util.h"

#if DC_HAVE_X86
#include <immintrin.h>
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
// Padded rows are a few dozen floats: inline copies beat memcpy calls.
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif


int cpu_conv_direct_avx2_available(void) {
#if DC_HAVE_X86
  static atomic_int cached = -1;  // a pure function of the CPU
  int v = atomic_load_explicit(&cached, memory_order_relaxed);
  if (v < 0) {
    __builtin_cpu_init();
    v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    atomic_store_explicit(&cached, v, memory_order_relaxed);
  }
  return v;
#else
  return 0;
#endif
}

DcPad dc_pad(const CpuConvShape *s) {
  DcPad p;
  p.hp = (s->oh - 1) * s->sh + s->kh;
  p.vpr = (s->ow + DC_PX - 1) / DC_PX;
  p.wq = p.vpr * DC_PX + (s->kw - 1) / s->sw + 1;
  p.plane = (size_t)p.hp * (size_t)s->sw * (size_t)p.wq;
  return p;
}

size_t dc_wpk_floats(const CpuConvShape *s) {
  size_t cob = ((size_t)s->co + DC_CO - 1) / DC_CO;
  return (cob * DC_CO * (size_t)s->ci * (size_t)s->kh * (size_t)s->kw + 15) & ~(size_t)15;
}

// Floats of the (ci, tap) offset table (ints), rounded to keep alignment.
size_t dc_toff_floats(const CpuConvShape *s) {
  return ((size_t)s->ci * (size_t)s->kh * (size_t)s->kw + 15) & ~(size_t)15;
}

void dc_tap_offsets(const CpuConvShape *s, const DcPad *p, int *toff) {
  for (int ci = 0, i = 0; ci < s->ci; ci++)
    for (int ky = 0; ky < s->kh; ky++)
      for (int kx = 0; kx < s->kw; kx++, i++)
        toff[i] = (int)((size_t)ci * p->plane +
                        ((size_t)ky * (size_t)s->sw + (size_t)(kx % s->sw)) * (size_t)p->wq +
                        (size_t)(kx / s->sw));
}

size_t cpu_conv_direct_avx2_ws_floats(const CpuConvShape *s, int threads) {
  DcPad p = dc_pad(s);
  return dc_wpk_floats(s) + dc_toff_floats(s) +
         (size_t)threads * (((size_t)s->ci * p.plane + 15) & ~(size_t)15);
}

int cpu_conv_direct_avx2_fits(const CpuConvShape *s) {
  DcPad p = dc_pad(s);
  return cpu_conv_direct_avx2_available() && s->groups == 1 && (s->sw == 1 || s->sw == 2) &&
         (double)s->ci * (double)p.plane < 2e9;  // offsets are ints
}

// wpk[cob][ci][ky][kx][j] = weight of output cob*4+j (0 past co). `flip`: the
// filter of the stride-1 backward data pass, built from the forward one w
// [ci'][co'][kh][kw] (here co = ci', ci = co'): transposed and flipped.
void dc_pack(const CpuConvShape *s, const float *w, int flip, float *wpk) {
  const int kk = s->kh * s->kw, cob = (s->co + DC_CO - 1) / DC_CO;
  for (int b = 0; b < cob; b++)
    for (int c = 0; c < s->ci; c++)
      for (int k = 0; k < kk; k++)
        for (int j = 0; j < DC_CO; j++) {
          const int o = b * DC_CO + j;
          float v = 0.0f;
          if (o < s->co)
            v = flip ? w[((size_t)c * (size_t)s->co + (size_t)o) * (size_t)kk + (size_t)(kk - 1 - k)]
                     : w[((size_t)o * (size_t)s->ci + (size_t)c) * (size_t)kk + (size_t)k];
          wpk[(((size_t)b * (size_t)s->ci + (size_t)c) * (size_t)kk + (size_t)k) * DC_CO + (size_t)j] = v;
        }
}

#if DC_HAVE_X86
#include <immintrin.h>
#define DC_AVX2 __attribute__((target("avx2,fma")))
#else
#define DC_AVX2
#endif

// pad[c][r][phase][q] = x[c][r - pt][q*sw + phase - pl], 0 outside the image.
// Compiled for AVX2 (the copies vectorise), so called only on CPUs with it:
// every caller is a direct AVX2 kernel.
// One padded row of one phase: d[q] = src[q*sw + off] for q in [lo, hi), 0 elsewhere.
DC_AVX2 static void dc_fill_row(float *restrict d, const float *restrict src, int sw, int off, int lo,
                        int hi, int wq) {
  for (int q = 0; q < lo; q++) d[q] = 0.0f;
  if (sw == 1) {
    for (int q = lo; q < hi; q++) d[q] = src[q + off];
  } else {
    for (int q = lo; q < hi; q++) d[q] = src[q * sw + off];
  }
  for (int q = hi; q < wq; q++) d[q] = 0.0f;
}

// Stride 2: both phases of a row in one pass over the source (interleaved
// loads vectorise), their few edge columns apart.
DC_AVX2 static void dc_fill_row2(float *restrict d0, float *restrict d1, const float *restrict src, int pl,
                         int w, int wq) {
  int lo0, hi0, lo1, hi1;
  cpu_valid_range(pl, 0, 2, w, wq, &lo0, &hi0);
  cpu_valid_range(pl - 1, 0, 2, w, wq, &lo1, &hi1);
  const int lo = cpu_max(lo0, lo1), hi = cpu_max(lo, cpu_min(hi0, hi1)), off = -pl;
  dc_fill_row(d0, src, 2, off, lo0, lo, wq);  // zeros, then the left edge
  dc_fill_row(d1, src, 2, off + 1, lo1, lo, wq);
  int q = lo;
#if DC_HAVE_X86
  // 16 source floats at a time: evens to d0, odds to d1.
  for (; q + 8 <= hi; q += 8) {
    const __m256 a = _mm256_loadu_ps(src + 2 * q + off), b = _mm256_loadu_ps(src + 2 * q + off + 8);
    const __m256 ev = _mm256_shuffle_ps(a, b, 0x88), od = _mm256_shuffle_ps(a, b, 0xDD);
    _mm256_storeu_ps(d0 + q, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8)));
    _mm256_storeu_ps(d1 + q, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), 0xD8)));
  }
#endif
  for (; q < hi; q++) {
    d0[q] = src[2 * q + off];
    d1[q] = src[2 * q + off + 1];
  }
  for (q = hi; q < hi0; q++) d0[q] = src[2 * q + off];
  for (q = hi; q < hi1; q++) d1[q] = src[2 * q + off + 1];
  for (q = cpu_max(hi, hi0); q < wq; q++) d0[q] = 0.0f;
  for (q = cpu_max(hi, hi1); q < wq; q++) d1[q] = 0.0f;
}

DC_AVX2 void dc_fill_pad(const CpuConvShape *s, const DcPad *p, const float *restrict x,
                 float *restrict pad) {
  const int sw = s->sw;
  for (int c = 0; c < s->ci; c++)
    for (int r = 0; r < p->hp; r++) {
      const int iy = r - s->pt;
      float *restrict d = pad + (size_t)c * p->plane + (size_t)r * (size_t)sw * (size_t)p->wq;
      if (iy < 0 || iy >= s->h) {
        for (size_t q = 0; q < (size_t)sw * (size_t)p->wq; q++) d[q] = 0.0f;
        continue;
      }
      const float *restrict src = x + ((size_t)c * (size_t)s->h + (size_t)iy) * (size_t)s->w;
      if (sw == 2) {
        dc_fill_row2(d, d + p->wq, src, s->pl, s->w, p->wq);
        continue;
      }
      for (int ph = 0; ph < sw; ph++) {
        int lo, hi;  // q with 0 <= q*sw + ph - pl < w
        cpu_valid_range(s->pl - ph, 0, sw, s->w, p->wq, &lo, &hi);
        dc_fill_row(d + (size_t)ph * (size_t)p->wq, src, sw, ph - s->pl, lo, hi, p->wq);
      }
    }
}


#if DC_HAVE_X86

// y[o][oy][ox0 .. ox0+8) (+)= v for the valid columns.
DC_AVX2 static inline void dc_store(const DcCtx *c, float *y, int o, int vec, __m256 v) {
  const CpuConvShape *s = c->s;
  if (o >= s->co) return;
  const int oy = vec / c->p.vpr, ox0 = (vec % c->p.vpr) * DC_PX;
  float *d = y + (size_t)o * (size_t)s->oh * (size_t)s->ow + (size_t)oy * (size_t)s->ow + (size_t)ox0;
  if (ox0 + DC_PX <= s->ow) {
    if (c->accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(d));
    _mm256_storeu_ps(d, v);
    return;
  }
  float t[DC_PX];
  _mm256_storeu_ps(t, v);
  for (int i = 0; i < s->ow - ox0; i++) d[i] = c->accumulate ? d[i] + t[i] : t[i];
}

// One tile: output channels [4b, 4b+4) x pixel vectors v0, v1, v2 (repeated
// when the row of vectors runs out). The loop runs over (input channel, tap)
// pairs with their offsets into the padded image from c->toff.
DC_AVX2 void dc_tile(const DcCtx *c, const float *pad, int b, const int *v, float *y) {
  const CpuConvShape *s = c->s;
  const size_t rs = (size_t)s->sh * (size_t)s->sw * (size_t)c->p.wq;  // floats per output row
  const float *p0 = pad + (size_t)(v[0] / c->p.vpr) * rs + (size_t)(v[0] % c->p.vpr) * DC_PX;
  const float *p1 = pad + (size_t)(v[1] / c->p.vpr) * rs + (size_t)(v[1] % c->p.vpr) * DC_PX;
  const float *p2 = pad + (size_t)(v[2] / c->p.vpr) * rs + (size_t)(v[2] % c->p.vpr) * DC_PX;
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
  __m256 a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
  const float *wp = c->wpk + (size_t)b * (size_t)c->steps * DC_CO;
  const int *toff = c->toff;
  for (int i = 0; i < c->steps; i++, wp += DC_CO) {
    const size_t o = (size_t)toff[i];
    const __m256 x0 = _mm256_loadu_ps(p0 + o), x1 = _mm256_loadu_ps(p1 + o), x2 = _mm256_loadu_ps(p2 + o);
    __m256 w = _mm256_broadcast_ss(wp);
    a00 = _mm256_fmadd_ps(w, x0, a00);
    a01 = _mm256_fmadd_ps(w, x1, a01);
    a02 = _mm256_fmadd_ps(w, x2, a02);
    w = _mm256_broadcast_ss(wp + 1);
    a10 = _mm256_fmadd_ps(w, x0, a10);
    a11 = _mm256_fmadd_ps(w, x1, a11);
    a12 = _mm256_fmadd_ps(w, x2, a12);
    w = _mm256_broadcast_ss(wp + 2);
    a20 = _mm256_fmadd_ps(w, x0, a20);
    a21 = _mm256_fmadd_ps(w, x1, a21);
    a22 = _mm256_fmadd_ps(w, x2, a22);
    w = _mm256_broadcast_ss(wp + 3);
    a30 = _mm256_fmadd_ps(w, x0, a30);
    a31 = _mm256_fmadd_ps(w, x1, a31);
    a32 = _mm256_fmadd_ps(w, x2, a32);
  }
  const int o = b * DC_CO;
  dc_store(c, y, o, v[0], a00);
  dc_store(c, y, o + 1, v[0], a10);
  dc_store(c, y, o + 2, v[0], a20);
  dc_store(c, y, o + 3, v[0], a30);
  if (v[1] != v[0]) {
    dc_store(c, y, o, v[1], a01);
    dc_store(c, y, o + 1, v[1], a11);
    dc_store(c, y, o + 2, v[1], a21);
    dc_store(c, y, o + 3, v[1], a31);
  }
  if (v[2] != v[1]) {
    dc_store(c, y, o, v[2], a02);
    dc_store(c, y, o + 1, v[2], a12);
    dc_store(c, y, o + 2, v[2], a22);
    dc_store(c, y, o + 3, v[2], a32);
  }
}

DC_AVX2 static void dc_task(void *vctx, int n, int thread) {
  const DcCtx *c = vctx;
  const CpuConvShape *s = c->s;
  float *pad = c->pads + (size_t)thread * c->pad_stride;
  dc_fill_pad(s, &c->p, c->x + (size_t)n * c->x_ss, pad);
  float *y = c->y + (size_t)n * c->y_ss;
  const int nvec = s->oh * c->p.vpr, cob = (s->co + DC_CO - 1) / DC_CO;
  for (int b = 0; b < cob; b++)
    for (int v0 = 0; v0 < nvec; v0 += 3) {
      const int v[3] = {v0, cpu_min(v0 + 1, nvec - 1), cpu_min(v0 + 2, nvec - 1)};
      dc_tile(c, pad, b, v, y);
    }
}
#endif

// Forward convolution (flip = 0) or, for a stride-1 shape s already
// transposed (its ci, co being the forward co, ci), the backward data pass
// with the forward filter w (flip = 1).
void cpu_conv_direct_avx2(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                          const float *w, int flip, float *y, size_t y_ss, int accumulate,
                          float *ws) {
#if DC_HAVE_X86
  NAO_ASSERT(cpu_conv_direct_avx2_fits(s));
  DcCtx c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.p = dc_pad(s);
  c.x = x;
  c.x_ss = x_ss;
  c.y = y;
  c.y_ss = y_ss;
  c.accumulate = accumulate;
  float *wpk = ws;
  dc_pack(s, w, flip, wpk);
  c.wpk = wpk;
  int *toff = (int *)(void *)(ws + dc_wpk_floats(s));
  c.steps = s->ci * s->kh * s->kw;
  dc_tap_offsets(s, &c.p, toff);
  c.toff = toff;
  c.pads = ws + dc_wpk_floats(s) + dc_toff_floats(s);
  c.pad_stride = ((size_t)s->ci * c.p.plane + 15) & ~(size_t)15;
  tp_run(tp, s->n, dc_task, &c);
#else
  (void)tp, (void)s, (void)x, (void)x_ss, (void)w, (void)flip, (void)y, (void)y_ss;
  (void)accumulate, (void)ws;
  nao_internal("cpu_conv_direct_avx2 called on a build without x86 support");
#endif
}
