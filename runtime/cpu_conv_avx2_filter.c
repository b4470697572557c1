// runtime/cpu_conv_avx2_filter.c — the filter gradient of dense convolutions
// with AVX2 + FMA (see cpu_conv_avx2.c for the padded image).
//
// dw[co][ci][ky][kx] = sum over samples and output pixels p of
// dy[co][p] * pad[ci][p + tap offset]. One task per fixed chunk of the batch:
// it pads its samples' inputs (and copies dy with zeroed row tails), then for
// tiles of 4 output channels x 3 consecutive (channel, tap) steps keeps 12
// vector accumulators over every pixel vector of every sample of the chunk,
// and sums each accumulator's lanes once. The chunk partials are added in
// chunk order by the caller, so results do not depend on the thread count.
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

// Per-sample scratch: the padded input, then dy as [cob*4][oh][vpr*8].
static size_t df_pad_floats(const CpuConvShape *s, const DcPad *p) {
  return ((size_t)s->ci * p->plane + 15) & ~(size_t)15;
}
static size_t df_dy_floats(const CpuConvShape *s, const DcPad *p) {
  size_t cob = ((size_t)s->co + DC_CO - 1) / DC_CO;
  return cob * DC_CO * (size_t)s->oh * (size_t)p->vpr * DC_PX;
}
static int df_chunk_max(const CpuConvShape *s, int chunks) { return (s->n + chunks - 1) / chunks; }

size_t cpu_conv_direct_avx2_filter_ws_floats(const CpuConvShape *s, int threads, int chunks) {
  DcPad p = dc_pad(s);
  size_t per = (size_t)df_chunk_max(s, chunks) * (df_pad_floats(s, &p) + df_dy_floats(s, &p));
  return dc_toff_floats(s) + (size_t)threads * per;
}

typedef struct {
  const CpuConvShape *s;
  DcPad p;
  const float *x, *dy;
  size_t x_ss, dy_ss;
  int chunks, steps;
  const int *toff;
  float *part;
  float *scratch;  // per thread
  size_t scratch_stride;
} DfCtx;

// dyp[o][oy][q] = dy[o][oy][q] for q < ow, 0 in the row tail and for o >= co.
static void df_fill_dy(const CpuConvShape *s, const DcPad *p, const float *restrict dy,
                       float *restrict dyp) {
  const int cob = (s->co + DC_CO - 1) / DC_CO, rw = p->vpr * DC_PX;
  for (int o = 0; o < cob * DC_CO; o++)
    for (int oy = 0; oy < s->oh; oy++) {
      float *restrict d = dyp + ((size_t)o * (size_t)s->oh + (size_t)oy) * (size_t)rw;
      const float *restrict src = dy + ((size_t)o * (size_t)s->oh + (size_t)oy) * (size_t)s->ow;
      const int n = o < s->co ? s->ow : 0;
      for (int q = 0; q < n; q++) d[q] = src[q];
      for (int q = n; q < rw; q++) d[q] = 0.0f;
    }
}

#if DC_HAVE_X86
#define DF_AVX2 __attribute__((target("avx2,fma")))

DF_AVX2 static inline float df_hsum(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
  return _mm_cvtss_f32(a);
}

// Output channels [4b, 4b+4) x steps i0, i0+1, i0+2 (repeated past the end)
// over the `ns` samples of the chunk.
DF_AVX2 static void df_tile(const DfCtx *c, const float *scr, int ns, int b, int i0, float *part) {
  const CpuConvShape *s = c->s;
  const size_t pad_f = df_pad_floats(s, &c->p), dy_f = df_dy_floats(s, &c->p);
  const size_t dplane = (size_t)s->oh * (size_t)c->p.vpr * DC_PX;
  const size_t rs = (size_t)s->sh * (size_t)s->sw * (size_t)c->p.wq;
  const int i1 = cpu_min(i0 + 1, c->steps - 1), i2 = cpu_min(i0 + 2, c->steps - 1);
  const size_t o0 = (size_t)c->toff[i0], o1 = (size_t)c->toff[i1], o2 = (size_t)c->toff[i2];
  const int nvec = s->oh * c->p.vpr;
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
  __m256 a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
  const int vpr = c->p.vpr;
  for (int n = 0; n < ns; n++) {
    const float *pad = scr + (size_t)n * (pad_f + dy_f);
    const float *d0 = pad + pad_f + (size_t)(b * DC_CO) * dplane;
    const float *xrow = pad;  // the padded input of output row v / vpr (no division a step)
    for (int v = 0, vr = 0; v < nvec; v++) {
      const float *xv = xrow + (size_t)vr * DC_PX;
      if (++vr == vpr) vr = 0, xrow += rs;
      const float *dv = d0 + (size_t)v * DC_PX;
      const __m256 x0 = _mm256_loadu_ps(xv + o0), x1 = _mm256_loadu_ps(xv + o1),
                   x2 = _mm256_loadu_ps(xv + o2);
      __m256 g = _mm256_loadu_ps(dv);
      a00 = _mm256_fmadd_ps(g, x0, a00);
      a01 = _mm256_fmadd_ps(g, x1, a01);
      a02 = _mm256_fmadd_ps(g, x2, a02);
      g = _mm256_loadu_ps(dv + dplane);
      a10 = _mm256_fmadd_ps(g, x0, a10);
      a11 = _mm256_fmadd_ps(g, x1, a11);
      a12 = _mm256_fmadd_ps(g, x2, a12);
      g = _mm256_loadu_ps(dv + 2 * dplane);
      a20 = _mm256_fmadd_ps(g, x0, a20);
      a21 = _mm256_fmadd_ps(g, x1, a21);
      a22 = _mm256_fmadd_ps(g, x2, a22);
      g = _mm256_loadu_ps(dv + 3 * dplane);
      a30 = _mm256_fmadd_ps(g, x0, a30);
      a31 = _mm256_fmadd_ps(g, x1, a31);
      a32 = _mm256_fmadd_ps(g, x2, a32);
    }
  }
  const __m256 acc[DC_CO][3] = {{a00, a01, a02}, {a10, a11, a12}, {a20, a21, a22}, {a30, a31, a32}};
  const int nk = cpu_min(3, c->steps - i0);
  for (int j = 0; j < DC_CO; j++) {
    const int o = b * DC_CO + j;
    if (o >= s->co) break;
    for (int k = 0; k < nk; k++) part[(size_t)o * (size_t)c->steps + (size_t)(i0 + k)] = df_hsum(acc[j][k]);
  }
}

DF_AVX2 static void df_task(void *vctx, int chunk, int thread) {
  const DfCtx *c = vctx;
  const CpuConvShape *s = c->s;
  const int n0 = (int)((long long)s->n * chunk / c->chunks);
  const int n1 = (int)((long long)s->n * (chunk + 1) / c->chunks);
  const size_t pad_f = df_pad_floats(s, &c->p), dy_f = df_dy_floats(s, &c->p);
  float *scr = c->scratch + (size_t)thread * c->scratch_stride;
  for (int n = n0; n < n1; n++) {
    float *pad = scr + (size_t)(n - n0) * (pad_f + dy_f);
    dc_fill_pad(s, &c->p, c->x + (size_t)n * c->x_ss, pad);
    df_fill_dy(s, &c->p, c->dy + (size_t)n * c->dy_ss, pad + pad_f);
  }
  float *part = c->part + (size_t)chunk * (size_t)s->co * (size_t)c->steps;
  const int cob = (s->co + DC_CO - 1) / DC_CO;
  for (int b = 0; b < cob; b++)
    for (int i0 = 0; i0 < c->steps; i0 += 3) df_tile(c, scr, n1 - n0, b, i0, part);
}
#endif

void cpu_conv_direct_avx2_filter(ThreadPool *tp, const CpuConvShape *s, const float *x,
                                 size_t x_ss, const float *dy, size_t dy_ss, int chunks,
                                 float *part, float *ws) {
#if DC_HAVE_X86
  NAO_ASSERT(cpu_conv_direct_avx2_fits(s) && chunks >= 1);
  DfCtx c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.p = dc_pad(s);
  c.x = x;
  c.x_ss = x_ss;
  c.dy = dy;
  c.dy_ss = dy_ss;
  c.chunks = chunks;
  c.steps = s->ci * s->kh * s->kw;
  int *toff = (int *)(void *)ws;
  dc_tap_offsets(s, &c.p, toff);
  c.toff = toff;
  c.part = part;
  c.scratch = ws + dc_toff_floats(s);
  c.scratch_stride = (size_t)df_chunk_max(s, chunks) * (df_pad_floats(s, &c.p) + df_dy_floats(s, &c.p));
  tp_run(tp, chunks, df_task, &c);
#else
  (void)tp, (void)s, (void)x, (void)x_ss, (void)dy, (void)dy_ss, (void)chunks, (void)part, (void)ws;
  nao_internal("cpu_conv_direct_avx2_filter called on a build without x86 support");
#endif
}
