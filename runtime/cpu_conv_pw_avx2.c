// runtime/cpu_conv_pw_avx2.c — 1x1 dense convolutions (groups 1) with AVX2 +
// FMA: the calibrations' and the 1x1 ops' pointwise convolutions and the
// factorized reduce's strided (and cropped) ones, all three passes.
//
// A 1x1 convolution is, per sample, a small matrix product over the pixels:
// y[co][p] = sum_ci w[co][ci] xs[ci][p], where xs is the input sampled at the
// output grid (xs[ci][oy][ox] = x[ci][oy*sh - pt][ox*sw - pl], 0 outside the
// image). With stride 1 and no padding xs is x itself, read in place;
// otherwise each task first gathers its sample's xs into a per-thread buffer
// (a quarter of the input for the factorized reduce).
//
// Forward and backward data share one tile: 4 output rows x 3 vectors of 8
// pixels in 12 accumulators, one step per input row (3 loads, 4 broadcasts,
// 12 FMAs); the last vector of a row of pixels is masked when the pixel count
// is not a multiple of 8. Backward data is the same product with the filter
// transposed (dxs = w^T dy), then, when strided, scattered back onto the input
// grid (zeros elsewhere unless accumulating). The filter gradient
// dw[co][ci] = sum_n sum_p dy[co][p] xs[ci][p] runs one task per fixed chunk of
// the batch: per sample, tiles of 4 output x 3 input channels keep 12 vector
// accumulators over the pixels, then their lane sums are added to the chunk's
// partial (written by the first sample); the caller adds the partials in chunk
// order. Each output is summed in one fixed order by one task, so results do
// not depend on the thread count (they differ from the GEMM path's rounding).
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

enum {
  PW_CO = 4,      // output rows per tile
  PW_PX = 8,      // pixels per vector
  PW_NV = 3,      // vectors per tile
  PW_BLOCK = 96,  // pixels per packed block (4 tiles)
};

static int pw_in_place(const CpuConvShape *s) {
  return s->sh == 1 && s->sw == 1 && s->pt == 0 && s->pl == 0 && s->oh == s->h && s->ow == s->w;
}

static size_t pw_round(size_t n) { return (n + 15) & ~(size_t)15; }

// Packed filter: [rows/4][k][4] for a product with `rows` outputs over k inputs.
static size_t pw_wpk_floats(int rows, int k) {
  return pw_round(cpu_div_up((size_t)rows, PW_CO) * PW_CO * (size_t)k);
}

// Per-thread buffer: the sampled input (forward, filter) or the sampled dx
// (strided backward data), ci planes of oh*ow floats.
static size_t pw_buf_floats(const CpuConvShape *s) {
  return pw_in_place(s) ? 0 : pw_round((size_t)s->ci * (size_t)s->oh * (size_t)s->ow);
}

// Samples whose filter-gradient sums one tile keeps in its accumulators: as
// many as keep their input and dy planes within PW_GROUP_BYTES (in L2), so
// that small planes do not pay a lane sum per tile and sample.
enum { PW_GROUP_BYTES = 192 * 1024, PW_MAX_GROUP = 64 };
static int pw_filter_group(const CpuConvShape *s) {
  size_t per = ((size_t)s->ci + (size_t)s->co) * (size_t)s->oh * (size_t)s->ow * sizeof(float);
  size_t g = per ? PW_GROUP_BYTES / per : 1;
  if (g > PW_MAX_GROUP) g = PW_MAX_GROUP;
  return g < 1 ? 1 : g > (size_t)s->n ? s->n : (int)g;
}

// Per-thread packed block of the product's k input rows.
static size_t pw_pk_floats(int k) { return pw_round((size_t)k * PW_BLOCK); }

int cpu_conv_pw_avx2_fits(const CpuConvShape *s) {
  return cpu_conv_direct_avx2_available() && s->groups == 1 && s->kh == 1 && s->kw == 1 &&
         (double)s->ci * (double)s->oh * (double)s->ow < 2e9;
}

size_t cpu_conv_pw_avx2_ws_floats(const CpuConvShape *s, CpuConvOp op, int threads) {
  if (op == CPU_CONV_FWD)
    return pw_wpk_floats(s->co, s->ci) + (pw_buf_floats(s) + pw_pk_floats(s->ci)) * (size_t)threads;
  if (op == CPU_CONV_BWD_DATA)
    return pw_wpk_floats(s->ci, s->co) + (pw_buf_floats(s) + pw_pk_floats(s->co)) * (size_t)threads;
  return pw_buf_floats(s) * (size_t)pw_filter_group(s) * (size_t)threads;
}

// wpk[r/4][k][r%4] = w[r][k] (transpose: w[k][r]); 0 for r >= rows.
void cpu_pw_pack(const float *w, int rows, int k, int transpose, float *wpk) {
  const int rb = (int)cpu_div_up((size_t)rows, PW_CO);
  for (int b = 0; b < rb; b++)
    for (int c = 0; c < k; c++)
      for (int j = 0; j < PW_CO; j++) {
        const int r = b * PW_CO + j;
        float v = 0.0f;
        if (r < rows) v = transpose ? w[(size_t)c * (size_t)rows + (size_t)r] : w[(size_t)r * (size_t)k + (size_t)c];
        wpk[((size_t)b * (size_t)k + (size_t)c) * PW_CO + (size_t)j] = v;
      }
}

// xs[c][oy][ox] = x[c][oy*sh - pt][ox*sw - pl], 0 outside the image.
static void pw_gather(const CpuConvShape *s, const float *restrict x, float *restrict xs) {
  for (int c = 0; c < s->ci; c++)
    for (int oy = 0; oy < s->oh; oy++) {
      float *restrict d = xs + ((size_t)c * (size_t)s->oh + (size_t)oy) * (size_t)s->ow;
      const int iy = oy * s->sh - s->pt;
      int lo = 0, hi = 0;
      if (iy >= 0 && iy < s->h) cpu_valid_range(s->pl, 0, s->sw, s->w, s->ow, &lo, &hi);
      const float *restrict src = x + ((size_t)c * (size_t)s->h + (size_t)(iy < 0 ? 0 : iy)) * (size_t)s->w;
      for (int ox = 0; ox < lo; ox++) d[ox] = 0.0f;
      if (s->sw == 2) {
        for (int ox = lo; ox < hi; ox++) d[ox] = src[2 * ox - s->pl];
      } else {
        for (int ox = lo; ox < hi; ox++) d[ox] = src[ox * s->sw - s->pl];
      }
      for (int ox = hi; ox < s->ow; ox++) d[ox] = 0.0f;
    }
}

// dx[c][iy][ix] (+)= dxs[c][oy][ox] where (iy, ix) = (oy*sh - pt, ox*sw - pl);
// the cells of dx no output reads get 0 (or keep their value when accumulating).
static void pw_scatter(const CpuConvShape *s, const float *restrict dxs, float *restrict dx,
                       int accumulate) {
  for (int c = 0; c < s->ci; c++)
    for (int iy = 0; iy < s->h; iy++) {
      float *restrict d = dx + ((size_t)c * (size_t)s->h + (size_t)iy) * (size_t)s->w;
      const int t = iy + s->pt, oy = t / s->sh;
      const int on_grid = t >= 0 && t % s->sh == 0 && oy < s->oh;
      if (!accumulate)
        for (int ix = 0; ix < s->w; ix++) d[ix] = 0.0f;
      if (!on_grid) continue;
      int lo, hi;
      cpu_valid_range(s->pl, 0, s->sw, s->w, s->ow, &lo, &hi);
      const float *restrict src = dxs + ((size_t)c * (size_t)s->oh + (size_t)oy) * (size_t)s->ow;
      for (int ox = lo; ox < hi; ox++) d[ox * s->sw - s->pl] += src[ox];
    }
}

#if DC_HAVE_X86
#define PW_AVX2 __attribute__((target("avx2,fma")))

typedef struct {
  int rows, k, np;        // outputs, inputs, pixels per plane
  const float *wpk;       // [rows/4][k][4]
  size_t in_cs, out_cs;   // channel strides of the input and output planes
  int accumulate;
} PwProduct;

PW_AVX2 static inline __m256i pw_mask(int valid) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), idx);
}

PW_AVX2 static inline void pw_store(float *d, __m256 v, int accumulate, int valid, __m256i m) {
  if (valid >= PW_PX) {
    if (accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(d));
    _mm256_storeu_ps(d, v);
  } else {
    if (accumulate) v = _mm256_add_ps(v, _mm256_maskload_ps(d, m));
    _mm256_maskstore_ps(d, m, v);
  }
}

// Rows [4b, 4b+4) x 3 full vectors of pixels from p0.
PW_AVX2 static void pw_tile_full(const PwProduct *c, const float *x, float *y, int b, int p0) {
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
  __m256 a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
  const float *wp = c->wpk + (size_t)b * (size_t)c->k * PW_CO;
  const float *xp = x + p0;
  for (int i = 0; i < c->k; i++, wp += PW_CO, xp += c->in_cs) {
    const __m256 x0 = _mm256_loadu_ps(xp), x1 = _mm256_loadu_ps(xp + 8), x2 = _mm256_loadu_ps(xp + 16);
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
  const __m256 acc[PW_CO][PW_NV] = {{a00, a01, a02}, {a10, a11, a12}, {a20, a21, a22}, {a30, a31, a32}};
  const __m256i none = _mm256_setzero_si256();
  for (int j = 0; j < PW_CO && b * PW_CO + j < c->rows; j++) {
    float *d = y + (size_t)(b * PW_CO + j) * c->out_cs + (size_t)p0;
    for (int v = 0; v < PW_NV; v++) pw_store(d + v * PW_PX, acc[j][v], c->accumulate, PW_PX, none);
  }
}

PW_AVX2 static void pw_tile_tail(const PwProduct *c, const float *x, float *y, int b, int p0);

// Rows [4b, 4b+4) x 2 or 1 full vectors from p0 (remainders of whole vectors).
PW_AVX2 static void pw_tile_v2(const PwProduct *c, const float *x, float *y, int b, int p0) {
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00;
  __m256 a20 = a00, a21 = a00, a30 = a00, a31 = a00;
  const float *wp = c->wpk + (size_t)b * (size_t)c->k * PW_CO;
  const float *xp = x + p0;
  for (int i = 0; i < c->k; i++, wp += PW_CO, xp += c->in_cs) {
    const __m256 x0 = _mm256_loadu_ps(xp), x1 = _mm256_loadu_ps(xp + 8);
    __m256 w = _mm256_broadcast_ss(wp);
    a00 = _mm256_fmadd_ps(w, x0, a00);
    a01 = _mm256_fmadd_ps(w, x1, a01);
    w = _mm256_broadcast_ss(wp + 1);
    a10 = _mm256_fmadd_ps(w, x0, a10);
    a11 = _mm256_fmadd_ps(w, x1, a11);
    w = _mm256_broadcast_ss(wp + 2);
    a20 = _mm256_fmadd_ps(w, x0, a20);
    a21 = _mm256_fmadd_ps(w, x1, a21);
    w = _mm256_broadcast_ss(wp + 3);
    a30 = _mm256_fmadd_ps(w, x0, a30);
    a31 = _mm256_fmadd_ps(w, x1, a31);
  }
  const __m256 acc[PW_CO][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
  const __m256i none = _mm256_setzero_si256();
  for (int j = 0; j < PW_CO && b * PW_CO + j < c->rows; j++) {
    float *d = y + (size_t)(b * PW_CO + j) * c->out_cs + (size_t)p0;
    for (int v = 0; v < 2; v++) pw_store(d + v * PW_PX, acc[j][v], c->accumulate, PW_PX, none);
  }
}

PW_AVX2 static void pw_tile_v1(const PwProduct *c, const float *x, float *y, int b, int p0) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  const float *wp = c->wpk + (size_t)b * (size_t)c->k * PW_CO;
  const float *xp = x + p0;
  for (int i = 0; i < c->k; i++, wp += PW_CO, xp += c->in_cs) {
    const __m256 x0 = _mm256_loadu_ps(xp);
    a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(wp), x0, a0);
    a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(wp + 1), x0, a1);
    a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(wp + 2), x0, a2);
    a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(wp + 3), x0, a3);
  }
  const __m256 acc[PW_CO] = {a0, a1, a2, a3};
  const __m256i none = _mm256_setzero_si256();
  for (int j = 0; j < PW_CO && b * PW_CO + j < c->rows; j++)
    pw_store(y + (size_t)(b * PW_CO + j) * c->out_cs + (size_t)p0, acc[j], c->accumulate, PW_PX, none);
}

// The pixels [p0, np) (fewer than 24): whole vectors unmasked, then a masked one.
PW_AVX2 static void pw_tile_rest(const PwProduct *c, const float *x, float *y, int b, int p0) {
  const int whole = (c->np - p0) / PW_PX;
  if (whole == 2) pw_tile_v2(c, x, y, b, p0);
  if (whole == 1) pw_tile_v1(c, x, y, b, p0);
  if (p0 + whole * PW_PX < c->np) pw_tile_tail(c, x, y, b, p0 + whole * PW_PX);
}

// Rows [4b, 4b+4) x the last np - p0 (< 24) pixels, the last vector masked.
PW_AVX2 static void pw_tile_tail(const PwProduct *c, const float *x, float *y, int b, int p0) {
  const int left = c->np - p0, nv = (left + PW_PX - 1) / PW_PX;
  const int last = left - (nv - 1) * PW_PX;
  const __m256i m = pw_mask(last), all = pw_mask(PW_PX);
  __m256 acc[PW_CO][PW_NV];
  for (int j = 0; j < PW_CO; j++)
    for (int v = 0; v < PW_NV; v++) acc[j][v] = _mm256_setzero_ps();
  const float *wp = c->wpk + (size_t)b * (size_t)c->k * PW_CO;
  const float *xp = x + p0;
  for (int i = 0; i < c->k; i++, wp += PW_CO, xp += c->in_cs)
    for (int v = 0; v < nv; v++) {
      const __m256 xv = _mm256_maskload_ps(xp + v * PW_PX, v == nv - 1 ? m : all);
      for (int j = 0; j < PW_CO; j++) acc[j][v] = _mm256_fmadd_ps(_mm256_broadcast_ss(wp + j), xv, acc[j][v]);
    }
  for (int j = 0; j < PW_CO && b * PW_CO + j < c->rows; j++) {
    float *d = y + (size_t)(b * PW_CO + j) * c->out_cs + (size_t)p0;
    for (int v = 0; v < nv; v++)
      pw_store(d + v * PW_PX, acc[j][v], c->accumulate, v == nv - 1 ? last : PW_PX, m);
  }
}

// y[r][p] (+)= sum_i wpk[r][i] x[i][p] for one sample, in blocks of pixels:
// each block's rows are first copied side by side into pk (k x PW_BLOCK
// floats, in L1), since rows a page apart would all compete for the same few
// L1 sets, then every tile of the block reads pk.
PW_AVX2 static void pw_product(const PwProduct *c, const float *x, float *y, float *pk) {
  const int rb = (int)cpu_div_up((size_t)c->rows, PW_CO);
  PwProduct blk = *c;
  blk.in_cs = PW_BLOCK;
  for (int p0 = 0; p0 < c->np; p0 += PW_BLOCK) {
    const int len = cpu_min(PW_BLOCK, c->np - p0);
    for (int i = 0; i < c->k; i++)
      memcpy(pk + (size_t)i * PW_BLOCK, x + (size_t)i * c->in_cs + (size_t)p0, sizeof(float) * (size_t)len);
    blk.np = len;
    const int full = len / (PW_NV * PW_PX) * (PW_NV * PW_PX);
    float *yb = y + p0;
    for (int b = 0; b < rb; b++) {
      for (int q = 0; q < full; q += PW_NV * PW_PX) pw_tile_full(&blk, pk, yb, b, q);
      if (full < len) pw_tile_rest(&blk, pk, yb, b, full);
    }
  }
}

typedef struct {
  const CpuConvShape *s;
  PwProduct prod;
  const float *in;  // x (forward) or dy (backward data)
  size_t in_ss;
  float *out;       // y or dx
  size_t out_ss;
  int accumulate;
  float *pks;       // per thread: the packed block
  size_t pk_stride;
  float *bufs;      // per thread: sampled planes (NULL in place)
  size_t buf_stride;
} PwCtx;

PW_AVX2 static void pw_fwd_task(void *vctx, int n, int thread) {
  const PwCtx *c = vctx;
  const float *x = c->in + (size_t)n * c->in_ss;
  if (c->bufs) {
    float *xs = c->bufs + (size_t)thread * c->buf_stride;
    pw_gather(c->s, x, xs);
    x = xs;
  }
  pw_product(&c->prod, x, c->out + (size_t)n * c->out_ss, c->pks + (size_t)thread * c->pk_stride);
}

PW_AVX2 static void pw_bwd_data_task(void *vctx, int n, int thread) {
  const PwCtx *c = vctx;
  const float *dy = c->in + (size_t)n * c->in_ss;
  float *dx = c->out + (size_t)n * c->out_ss;
  float *pk = c->pks + (size_t)thread * c->pk_stride;
  if (!c->bufs) {
    pw_product(&c->prod, dy, dx, pk);
    return;
  }
  float *dxs = c->bufs + (size_t)thread * c->buf_stride;
  pw_product(&c->prod, dy, dxs, pk);
  pw_scatter(c->s, dxs, dx, c->accumulate);
}

// ---------------------------------------------------------------- filter gradient

PW_AVX2 static inline float pw_hsum(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
  return _mm_cvtss_f32(a);
}

typedef struct {
  const CpuConvShape *s;
  const float *x, *dy;
  size_t x_ss, dy_ss;
  int chunks;
  float *part;      // chunks x co x ci
  float *bufs;
  size_t buf_stride;
} PwFilterCtx;

// out[o][i] (+)= sum over the ng segments g of sum_p a[g][o][p] b[g][i][p]
// (rows of np floats, cs apart), for o in [o0, o0+4) and i in [i0, i0+3),
// both clipped to na and nb (rows past them repeat the last one and are not
// stored); out rows are nb floats. first: write instead of adding.
PW_AVX2 static void pw_gram_tile(int na, int nb, size_t np, size_t cs, const float *const *a,
                                 const float *const *b, int ng, int o0, int i0, float *out,
                                 int first) {
  const size_t full = np / PW_PX * PW_PX;
  const __m256i m = pw_mask((int)(np - full));
  size_t oo[PW_CO], io[3];
  for (int j = 0; j < PW_CO; j++) oo[j] = (size_t)cpu_min(o0 + j, na - 1) * cs;
  for (int j = 0; j < 3; j++) io[j] = (size_t)cpu_min(i0 + j, nb - 1) * cs;
  __m256 acc[PW_CO][3];
  for (int j = 0; j < PW_CO; j++)
    for (int k = 0; k < 3; k++) acc[j][k] = _mm256_setzero_ps();
  for (int g = 0; g < ng; g++) {
    const float *x0p = b[g] + io[0], *x1p = b[g] + io[1], *x2p = b[g] + io[2];
    const float *d0 = a[g] + oo[0], *d1 = a[g] + oo[1], *d2 = a[g] + oo[2], *d3 = a[g] + oo[3];
    for (size_t p = 0; p < full; p += PW_PX) {
      const __m256 x0 = _mm256_loadu_ps(x0p + p), x1 = _mm256_loadu_ps(x1p + p),
                   x2 = _mm256_loadu_ps(x2p + p);
      __m256 dv = _mm256_loadu_ps(d0 + p);
      acc[0][0] = _mm256_fmadd_ps(dv, x0, acc[0][0]);
      acc[0][1] = _mm256_fmadd_ps(dv, x1, acc[0][1]);
      acc[0][2] = _mm256_fmadd_ps(dv, x2, acc[0][2]);
      dv = _mm256_loadu_ps(d1 + p);
      acc[1][0] = _mm256_fmadd_ps(dv, x0, acc[1][0]);
      acc[1][1] = _mm256_fmadd_ps(dv, x1, acc[1][1]);
      acc[1][2] = _mm256_fmadd_ps(dv, x2, acc[1][2]);
      dv = _mm256_loadu_ps(d2 + p);
      acc[2][0] = _mm256_fmadd_ps(dv, x0, acc[2][0]);
      acc[2][1] = _mm256_fmadd_ps(dv, x1, acc[2][1]);
      acc[2][2] = _mm256_fmadd_ps(dv, x2, acc[2][2]);
      dv = _mm256_loadu_ps(d3 + p);
      acc[3][0] = _mm256_fmadd_ps(dv, x0, acc[3][0]);
      acc[3][1] = _mm256_fmadd_ps(dv, x1, acc[3][1]);
      acc[3][2] = _mm256_fmadd_ps(dv, x2, acc[3][2]);
    }
    if (full < np) {
      const __m256 x0 = _mm256_maskload_ps(x0p + full, m), x1 = _mm256_maskload_ps(x1p + full, m),
                   x2 = _mm256_maskload_ps(x2p + full, m);
      const float *d[PW_CO] = {d0, d1, d2, d3};
      for (int j = 0; j < PW_CO; j++) {
        const __m256 dv = _mm256_maskload_ps(d[j] + full, m);
        acc[j][0] = _mm256_fmadd_ps(dv, x0, acc[j][0]);
        acc[j][1] = _mm256_fmadd_ps(dv, x1, acc[j][1]);
        acc[j][2] = _mm256_fmadd_ps(dv, x2, acc[j][2]);
      }
    }
  }
  for (int j = 0; j < PW_CO && o0 + j < na; j++)
    for (int k = 0; k < 3 && i0 + k < nb; k++) {
      float *t = out + (size_t)(o0 + j) * (size_t)nb + (size_t)(i0 + k);
      const float v = pw_hsum(acc[j][k]);
      *t = first ? v : *t + v;
    }
}

PW_AVX2 static void pw_gram(int na, int nb, size_t np, size_t cs, const float *const *a,
                      const float *const *b, int ng, float *out, int first) {
  for (int o0 = 0; o0 < na; o0 += PW_CO)
    for (int i0 = 0; i0 < nb; i0 += 3) pw_gram_tile(na, nb, np, cs, a, b, ng, o0, i0, out, first);
}

PW_AVX2 void cpu_pw_gemm_avx2(int rows, int k, int np, const float *wpk, const float *x, size_t x_cs,
                      float *y, size_t y_cs, int accumulate) {
  const PwProduct c = {rows, k, np, wpk, x_cs, y_cs, accumulate};
  const int rb = (int)cpu_div_up((size_t)rows, PW_CO), full = np / (PW_NV * PW_PX) * (PW_NV * PW_PX);
  for (int b = 0; b < rb; b++) {
    for (int q = 0; q < full; q += PW_NV * PW_PX) pw_tile_full(&c, x, y, b, q);
    if (full < np) pw_tile_rest(&c, x, y, b, full);
  }
}

PW_AVX2 static void pw_filter_task(void *vctx, int chunk, int thread) {
  const PwFilterCtx *c = vctx;
  const CpuConvShape *s = c->s;
  float *part = c->part + (size_t)chunk * (size_t)s->co * (size_t)s->ci;
  const int n0 = (int)((long long)s->n * chunk / c->chunks);
  const int n1 = (int)((long long)s->n * (chunk + 1) / c->chunks);
  const int group = pw_filter_group(s);
  const float *xs[PW_MAX_GROUP], *dy[PW_MAX_GROUP];
  for (int g0 = n0; g0 < n1; g0 += group) {
    const int ng = cpu_min(group, n1 - g0);
    for (int g = 0; g < ng; g++) {
      xs[g] = c->x + (size_t)(g0 + g) * c->x_ss;
      dy[g] = c->dy + (size_t)(g0 + g) * c->dy_ss;
      if (c->bufs) {
        float *b = c->bufs + ((size_t)thread * (size_t)group + (size_t)g) * c->buf_stride;
        pw_gather(s, xs[g], b);
        xs[g] = b;
      }
    }
    pw_gram(s->co, s->ci, (size_t)s->oh * (size_t)s->ow, (size_t)s->oh * (size_t)s->ow,
                     dy, xs, ng, part, g0 == n0);
  }
}
#endif

// ---------------------------------------------------------------- entry points

void cpu_conv_pw_avx2(ThreadPool *tp, const CpuConvShape *s, CpuConvOp op, const float *in,
                      size_t in_ss, const float *w, float *out, size_t out_ss, int accumulate,
                      float *ws) {
#if DC_HAVE_X86
  NAO_ASSERT(cpu_conv_pw_avx2_fits(s) && op != CPU_CONV_BWD_FILTER);
  PwCtx c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.in = in;
  c.in_ss = in_ss;
  c.out = out;
  c.out_ss = out_ss;
  c.accumulate = accumulate;
  const int fwd = op == CPU_CONV_FWD;
  const int rows = fwd ? s->co : s->ci, k = fwd ? s->ci : s->co;
  cpu_pw_pack(w, rows, k, !fwd, ws);
  // Planes of oh*ow floats on both sides: the sampled input (x itself when
  // in place), dy, y, and dx or its sampled buffer.
  const size_t np = (size_t)s->oh * (size_t)s->ow;
  c.prod = (PwProduct){rows, k, (int)np, ws, np, np, accumulate};
  c.pks = ws + pw_wpk_floats(rows, k);
  c.pk_stride = pw_pk_floats(k);
  if (!pw_in_place(s)) {
    c.bufs = c.pks + c.pk_stride * (size_t)tp_threads(tp);
    c.buf_stride = pw_buf_floats(s);
    if (!fwd) c.prod.accumulate = 0;  // into the sampled buffer; the scatter accumulates
  }
  tp_run(tp, s->n, fwd ? pw_fwd_task : pw_bwd_data_task, &c);
#else
  (void)tp, (void)s, (void)op, (void)in, (void)in_ss, (void)w, (void)out, (void)out_ss;
  (void)accumulate, (void)ws;
  nao_internal("cpu_conv_pw_avx2 called on a build without x86 support");
#endif
}

void cpu_conv_pw_avx2_filter(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                             const float *dy, size_t dy_ss, int chunks, float *part, float *ws) {
#if DC_HAVE_X86
  NAO_ASSERT(cpu_conv_pw_avx2_fits(s) && chunks >= 1 && chunks <= s->n);
  PwFilterCtx c = {s, x, dy, x_ss, dy_ss, chunks, part, NULL, 0};
  if (!pw_in_place(s)) {
    c.bufs = ws;
    c.buf_stride = pw_buf_floats(s);
  }
  tp_run(tp, chunks, pw_filter_task, &c);
#else
  (void)tp, (void)s, (void)x, (void)x_ss, (void)dy, (void)dy_ss, (void)chunks, (void)part, (void)ws;
  nao_internal("cpu_conv_pw_avx2_filter called on a build without x86 support");
#endif
}
