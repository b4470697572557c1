// runtime/cpu_conv_dw_avx2.c — depthwise convolutions (groups == ci == co) with
// AVX2 + FMA, chosen at run time like cpu_conv_avx2.c, whose padded image
// (one channel here) they share.
//
// Forward, and stride-1 backward data as the forward with flipped taps: one
// task per (sample, channel) plane pads the plane, then tiles of 8 vectors of 8
// output pixels keep 8 accumulators over the taps (one broadcast, 8 loads, 8
// FMAs a tap). Filter gradient: one task per channel; per sample it pads the
// plane and dy, keeps one vector accumulator per tap (8 taps at a time) over
// the pixels, sums each accumulator's lanes, and adds the sums in double in
// sample order. No two tasks write the same float; results do not depend on
// the thread count.
#include <string.h>

#include "compiler/util.h"
#include "runtime/cpu_conv_internal.h"
#include "runtime/cpu_util.h"

#if DC_HAVE_X86
#include <immintrin.h>
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

enum { DW_MAX_TAPS = 64, DW_TILE = 8 };

// One channel of s: the geometry of its padded plane.
static CpuConvShape dw_one(const CpuConvShape *s) {
  CpuConvShape o = *s;
  o.ci = o.co = o.groups = 1;
  return o;
}

int cpu_conv_dw_avx2_fits(const CpuConvShape *s, CpuConvOp op) {
  if (s->algo == CPU_CONV_PORTABLE || !cpu_conv_direct_avx2_available()) return 0;
  if (s->groups != s->ci || s->groups != s->co || s->kh * s->kw > DW_MAX_TAPS) return 0;
  if (op == CPU_CONV_BWD_DATA) return s->sh == 1 && s->sw == 1;
  return s->sw == 1 || s->sw == 2;
}

static size_t dw_round(size_t f) { return (f + 15) & ~(size_t)15; }

size_t cpu_conv_dw_avx2_ws_floats(const CpuConvShape *s, CpuConvOp op, int threads) {
  CpuConvShape o = dw_one(s);
  if (op == CPU_CONV_BWD_DATA) {  // the transposed shape's planes
    o.h = s->oh, o.w = s->ow, o.oh = s->h, o.ow = s->w;
    o.pt = s->kh - 1 - s->pt, o.pl = s->kw - 1 - s->pl;
  }
  DcPad p = dc_pad(&o);
  size_t per = dw_round(p.plane);
  if (op == CPU_CONV_BWD_FILTER) per += dw_round((size_t)s->oh * (size_t)p.vpr * DC_PX);
  return per * (size_t)threads;
}

typedef struct {
  const CpuConvShape *s;  // all channels (for bwd data: the transposed shape)
  CpuConvShape one;
  DcPad p;
  const float *x, *dy, *w;
  size_t x_ss, dy_ss;
  int flip;
  float *y;  // output, or the filter gradient
  size_t y_ss;
  int accumulate;
  float *scratch;
  size_t scratch_stride;
  int kk;
  int toff[DW_MAX_TAPS];
} DwCtx;

#if DC_HAVE_X86
#define DW_AVX2 __attribute__((target("avx2,fma")))

// Output vector v of the plane y (+)= a, its valid columns only.
DW_AVX2 static inline void dw_store(const DwCtx *c, float *y, int v, __m256 a) {
  const CpuConvShape *s = c->s;
  const int oy = v / c->p.vpr, ox0 = (v % c->p.vpr) * DC_PX;
  float *d = y + (size_t)oy * (size_t)s->ow + (size_t)ox0;
  if (ox0 + DC_PX <= s->ow) {
    if (c->accumulate) a = _mm256_add_ps(a, _mm256_loadu_ps(d));
    _mm256_storeu_ps(d, a);
    return;
  }
  float t[DC_PX];
  _mm256_storeu_ps(t, a);
  for (int i = 0; i < s->ow - ox0; i++) d[i] = c->accumulate ? d[i] + t[i] : t[i];
}

DW_AVX2 static void dw_fwd_task(void *vctx, int task, int thread) {
  const DwCtx *c = vctx;
  const CpuConvShape *s = c->s;
  const int n = task / s->co, ch = task % s->co, kk = c->kk;
  float *pad = c->scratch + (size_t)thread * c->scratch_stride;
  dc_fill_pad(&c->one, &c->p, c->x + (size_t)n * c->x_ss + (size_t)ch * (size_t)s->h * (size_t)s->w, pad);
  float wt[DW_MAX_TAPS];
  for (int t = 0; t < kk; t++) wt[t] = c->w[(size_t)ch * (size_t)kk + (size_t)(c->flip ? kk - 1 - t : t)];
  float *y = c->y + (size_t)n * c->y_ss + (size_t)ch * (size_t)s->oh * (size_t)s->ow;
  const size_t rs = (size_t)s->sh * (size_t)s->sw * (size_t)c->p.wq;
  const int nvec = s->oh * c->p.vpr;
  for (int v0 = 0; v0 < nvec; v0 += DW_TILE) {
    const float *base[DW_TILE];
    __m256 acc[DW_TILE];
#pragma GCC unroll 8
    for (int j = 0; j < DW_TILE; j++) {
      const int v = cpu_min(v0 + j, nvec - 1);
      base[j] = pad + (size_t)(v / c->p.vpr) * rs + (size_t)(v % c->p.vpr) * DC_PX;
      acc[j] = _mm256_setzero_ps();
    }
    for (int t = 0; t < kk; t++) {
      const __m256 wv = _mm256_broadcast_ss(&wt[t]);
      const int o = c->toff[t];
#pragma GCC unroll 8
      for (int j = 0; j < DW_TILE; j++) acc[j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(base[j] + o), acc[j]);
    }
    for (int j = 0; j < DW_TILE && v0 + j < nvec; j++) dw_store(c, y, v0 + j, acc[j]);
  }
}

DW_AVX2 static inline float dw_hsum(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
  return _mm_cvtss_f32(a);
}

DW_AVX2 static void dw_filter_task(void *vctx, int ch, int thread) {
  const DwCtx *c = vctx;
  const CpuConvShape *s = c->s;
  const int kk = c->kk, nvec = s->oh * c->p.vpr, rw = c->p.vpr * DC_PX;
  const size_t rs = (size_t)s->sh * (size_t)s->sw * (size_t)c->p.wq;
  float *pad = c->scratch + (size_t)thread * c->scratch_stride;
  float *dyp = pad + dw_round(c->p.plane);
  double tot[DW_MAX_TAPS];
  for (int t = 0; t < kk; t++) tot[t] = 0.0;
  for (int n = 0; n < s->n; n++) {
    dc_fill_pad(&c->one, &c->p, c->x + (size_t)n * c->x_ss + (size_t)ch * (size_t)s->h * (size_t)s->w, pad);
    const float *dy = c->dy + (size_t)n * c->dy_ss + (size_t)ch * (size_t)s->oh * (size_t)s->ow;
    for (int oy = 0; oy < s->oh; oy++) {
      float *d = dyp + (size_t)oy * (size_t)rw;
      for (int q = 0; q < s->ow; q++) d[q] = dy[(size_t)oy * (size_t)s->ow + (size_t)q];
      for (int q = s->ow; q < rw; q++) d[q] = 0.0f;
    }
    for (int t0 = 0; t0 < kk; t0 += DW_TILE) {
      int o[DW_TILE];
      __m256 acc[DW_TILE];
#pragma GCC unroll 8
      for (int j = 0; j < DW_TILE; j++) {
        o[j] = c->toff[cpu_min(t0 + j, kk - 1)];
        acc[j] = _mm256_setzero_ps();
      }
      for (int v = 0; v < nvec; v++) {
        const float *xv = pad + (size_t)(v / c->p.vpr) * rs + (size_t)(v % c->p.vpr) * DC_PX;
        const __m256 g = _mm256_loadu_ps(dyp + (size_t)v * DC_PX);
#pragma GCC unroll 8
        for (int j = 0; j < DW_TILE; j++) acc[j] = _mm256_fmadd_ps(g, _mm256_loadu_ps(xv + o[j]), acc[j]);
      }
      for (int j = 0; j < DW_TILE && t0 + j < kk; j++) tot[t0 + j] += (double)dw_hsum(acc[j]);
    }
  }
  float *dw = c->y + (size_t)ch * (size_t)kk;
  for (int t = 0; t < kk; t++) dw[t] = c->accumulate ? dw[t] + (float)tot[t] : (float)tot[t];
}
#endif

static void dw_ctx(DwCtx *c, const CpuConvShape *s, float *ws, CpuConvOp op) {
  memset(c, 0, sizeof *c);
  c->s = s;
  c->one = dw_one(s);
  c->p = dc_pad(&c->one);
  c->kk = s->kh * s->kw;
  dc_tap_offsets(&c->one, &c->p, c->toff);
  c->scratch = ws;
  c->scratch_stride = dw_round(c->p.plane);
  if (op == CPU_CONV_BWD_FILTER) c->scratch_stride += dw_round((size_t)s->oh * (size_t)c->p.vpr * DC_PX);
}

// Forward (flip = 0), or the stride-1 backward data pass of the forward shape
// `fwd` (flip = 1: run on its transposed shape with the taps flipped).
void cpu_conv_dw_avx2_fwd(ThreadPool *tp, const CpuConvShape *fwd, int flip, const float *x,
                          size_t x_ss, const float *w, float *y, size_t y_ss, int accumulate,
                          float *ws) {
#if DC_HAVE_X86
  CpuConvShape t = *fwd;
  if (flip) {  // dy (oh x ow) -> dx (h x w), padding k-1-p
    t.h = fwd->oh, t.w = fwd->ow, t.oh = fwd->h, t.ow = fwd->w;
    t.pt = fwd->kh - 1 - fwd->pt, t.pl = fwd->kw - 1 - fwd->pl;
  }
  DwCtx c;
  dw_ctx(&c, &t, ws, CPU_CONV_FWD);
  c.x = x;
  c.x_ss = x_ss;
  c.w = w;
  c.flip = flip;
  c.y = y;
  c.y_ss = y_ss;
  c.accumulate = accumulate;
  tp_run(tp, t.n * t.co, dw_fwd_task, &c);
#else
  (void)tp, (void)fwd, (void)flip, (void)x, (void)x_ss, (void)w, (void)y, (void)y_ss;
  (void)accumulate, (void)ws;
  nao_internal("cpu_conv_dw_avx2_fwd called on a build without x86 support");
#endif
}

void cpu_conv_dw_avx2_filter(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                             const float *dy, size_t dy_ss, float *dw, int accumulate, float *ws) {
#if DC_HAVE_X86
  DwCtx c;
  dw_ctx(&c, s, ws, CPU_CONV_BWD_FILTER);
  c.x = x;
  c.x_ss = x_ss;
  c.dy = dy;
  c.dy_ss = dy_ss;
  c.y = dw;
  c.accumulate = accumulate;
  tp_run(tp, s->co, dw_filter_task, &c);
#else
  (void)tp, (void)s, (void)x, (void)x_ss, (void)dy, (void)dy_ss, (void)dw, (void)accumulate, (void)ws;
  nao_internal("cpu_conv_dw_avx2_filter called on a build without x86 support");
#endif
}
