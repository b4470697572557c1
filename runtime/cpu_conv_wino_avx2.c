// runtime/cpu_conv_wino_avx2.c — 3x3 stride-1 dense convolutions by Winograd's
// minimal filtering F(2x2, 3x3) (Lavin & Gray 2016) with AVX2 + FMA: the
// forward pass and the backward data pass (the forward pass of the
// transposed, flipped filter). The filter gradient stays on the direct kernel:
// a Winograd version (Gram products of transformed dy and input tiles) was
// 1.2-1.3x slower than it at NAO's shapes (docs/cpu-backend.md).
//
// Output tile (ty, tx) = the 2x2 outputs at rows 2ty.., columns 2tx..; it reads
// the 4x4 input patch from row 2ty - pt, column 2tx - pl (0 outside the image).
// With U = G w G^T (4x4 per output/input channel pair), V = B^T d B (per input
// channel and tile) and M[xi] = sum_ci U[xi][co][ci] V[xi][ci] (16 matrix
// products, xi the 16 positions), y = A^T M A. Multiplies per output: 4 per
// (co, ci) against 9 directly; the transforms are additions.
//
// Layout. Transforms work on 8 tiles at once (AVX2 lanes over tiles), so a row
// of tiles must hold a multiple of 8: with 8 or more tiles per output row a
// sample's row of tiles is padded to a multiple of 8 (the extra tiles are
// computed and dropped); with fewer, `group` = 8 / gcd(tiles, 8) samples are
// put side by side (samples past the batch are zeros). Per sample (or group)
// the input is first copied into stride-2 phase images (dc_fill_pad's layout
// for one sample, one image per patch column for a group), so that column c
// of the patches of 8 consecutive tiles is one vector load. Then, in blocks of
// `tb` tiles: transform into V[xi][ci][tile], multiply into M[xi][co][tile]
// (the 1x1 products of cpu_conv_pw_avx2.c: 4 outputs x 24 tiles in
// registers), transform back into y. Every output is summed in one fixed
// order by one task, so results do not depend on the thread count; they
// differ from the direct kernels' rounding (the transforms add and subtract
// before multiplying: errors a few times float rounding, docs/cpu-backend.md).
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
  WG_XI = 16,                 // transform positions (4x4)
  WG_LANES = 8,               // tiles per vector
  WG_FWD_FLOATS = 49152,      // V + M of one forward block (192 KiB)
};

typedef struct {
  int ntx, nty;  // tiles per row and per column of one sample's output
  int group;     // samples side by side (1 when ntx >= 8)
  int seg;       // tiles a sample takes in a row of tiles: ntx, or ntx rounded up to 8
  int trow;      // tiles per row of tiles of a group (group * seg, a multiple of 8)
  int tiles;     // tiles of a group: nty * trow
  int hp;        // rows of the input phase images: 2 * nty + 2
  int wq;        // one sample (group 1): floats per row and phase, >= trow + 1
  int tb;        // tiles per forward block (a multiple of 8)
} WgGeom;

// Where column c (0..3) of the patches of tile k, row r, channel ch lies:
// base + col[c] + ch * cs + r * rs + k.
typedef struct {
  const float *base;
  size_t cs, rs, col[4];
} WgSrc;

static int wg_gcd(int a, int b) {
  while (b) {
    int t = a % b;
    a = b;
    b = t;
  }
  return a;
}

static WgGeom wg_geom(const CpuConvShape *s) {
  WgGeom g;
  g.ntx = (s->ow + 1) / 2;
  g.nty = (s->oh + 1) / 2;
  g.group = g.ntx >= WG_LANES ? 1 : WG_LANES / wg_gcd(g.ntx, WG_LANES);
  g.seg = g.group == 1 ? (int)cpu_div_up((size_t)g.ntx, WG_LANES) * WG_LANES : g.ntx;
  g.trow = g.group * g.seg;
  g.tiles = g.nty * g.trow;
  g.hp = 2 * g.nty + 2;
  g.wq = g.trow + 1;
  // Tiles per forward block: within the budget, a multiple of 24 (the
  // products' register tile) when there are that many.
  int tb = WG_FWD_FLOATS / (WG_XI * (s->ci + s->co));
  tb = tb >= 24 ? tb / 24 * 24 : cpu_max(WG_LANES, tb / WG_LANES * WG_LANES);
  g.tb = cpu_min(tb, g.tiles);
  return g;
}

int cpu_conv_wino_avx2_fits(const CpuConvShape *s) {
  return cpu_conv_direct_avx2_available() && s->groups == 1 && s->kh == 3 && s->kw == 3 &&
         s->sh == 1 && s->sw == 1 && s->ci >= 8 && s->co >= 8 && s->oh >= 1 && s->ow >= 1 &&
         (double)s->ci * (double)s->h * (double)s->w < 1e9 && s->ow < 65536;
}

static size_t wg_round(size_t n) { return (n + 15) & ~(size_t)15; }
// Input phase images: group 1, [ci][hp][2][wq] (dc_fill_pad's stride-2
// layout); else [4][ci][hp][trow].
static size_t wg_p_floats(const CpuConvShape *s, const WgGeom *g) {
  size_t per_row = g->group == 1 ? 2 * (size_t)g->wq : 4 * (size_t)g->trow;
  return wg_round((size_t)s->ci * (size_t)g->hp * per_row);
}
static size_t wg_u_stride(const CpuConvShape *s) {  // packed U of one position
  return wg_round(cpu_div_up((size_t)s->co, 4) * 4 * (size_t)s->ci);
}
static size_t wg_fwd_thread_floats(const CpuConvShape *s, const WgGeom *g) {
  return wg_p_floats(s, g) + wg_round((size_t)WG_XI * (size_t)(s->ci + s->co) * (size_t)g->tb);
}

size_t cpu_conv_wino_avx2_ws_floats(const CpuConvShape *s, int threads) {
  WgGeom g = wg_geom(s);
  return WG_XI * wg_u_stride(s) + (size_t)threads * wg_fwd_thread_floats(s, &g);
}

// ---------------------------------------------------------------- phase images

// A stride-2 padded image of `c` channels of h x w (rows from -pt, columns
// from -pl) in dc_fill_pad's layout [c][rows][2][wq]: phase p, index q holds
// column 2q + p - pl. Column j of tile k's patch is phase j & 1, index k + j / 2.
static WgSrc wg_fill_one(const WgGeom *g, int c, int h, int w, int pt, int pl, int rows,
                         const float *x, float *P) {
  CpuConvShape f;
  memset(&f, 0, sizeof f);
  f.n = 1, f.ci = c, f.h = h, f.w = w, f.sh = 1, f.sw = 2, f.pt = pt, f.pl = pl;
  DcPad pd;
  pd.hp = rows;
  pd.wq = g->wq;
  pd.vpr = 0;
  pd.plane = (size_t)rows * 2 * (size_t)g->wq;
  dc_fill_pad(&f, &pd, x, P);
  WgSrc src = {P, pd.plane, 2 * (size_t)g->wq, {0, (size_t)g->wq, 1, (size_t)g->wq + 1}};
  return src;
}

// Samples side by side (group > 1): image j of 4 ([4][c][rows][trow]) holds,
// for tile k = sample * ntx + tx, column 2tx + j - pl of that sample (0
// outside, and for samples from n on). Column j of tile k's patch is image j.
static WgSrc wg_fill_group(const WgGeom *g, int c, int h, int w, int pt, int pl, int rows,
                           const float *x, size_t x_ss, int n0, int n, float *P) {
  const size_t plane = (size_t)rows * (size_t)g->trow, img = (size_t)c * plane;
  for (int j = 0; j < 4; j++) {
    int lo, hi;  // tx whose column 2tx + j - pl is in the image
    cpu_valid_range(pl - j, 0, 2, w, g->ntx, &lo, &hi);
    for (int ch = 0; ch < c; ch++)
      for (int row = 0; row < rows; row++) {
        float *restrict d = P + (size_t)j * img + (size_t)ch * plane + (size_t)row * (size_t)g->trow;
        const int iy = row - pt;
        for (int sl = 0; sl < g->group; sl++, d += g->ntx) {
          const int sn = n0 + sl;
          if (sn >= n || iy < 0 || iy >= h) {
            for (int tx = 0; tx < g->ntx; tx++) d[tx] = 0.0f;
            continue;
          }
          const float *restrict src = x + (size_t)sn * x_ss + ((size_t)ch * (size_t)h + (size_t)iy) * (size_t)w;
          for (int tx = 0; tx < lo; tx++) d[tx] = 0.0f;
          for (int tx = lo; tx < hi; tx++) d[tx] = src[2 * tx + j - pl];
          for (int tx = hi; tx < g->ntx; tx++) d[tx] = 0.0f;
        }
      }
  }
  WgSrc src = {P, plane, (size_t)g->trow, {0, img, 2 * img, 3 * img}};
  return src;
}

// The input patches of the group from n0 (rows from -pt, columns from -pl).
static WgSrc wg_fill_input(const CpuConvShape *s, const WgGeom *g, const float *x, size_t x_ss,
                           int n0, int n, float *P) {
  if (g->group == 1) {
    NAO_ASSERT(n0 < n);
    return wg_fill_one(g, s->ci, s->h, s->w, s->pt, s->pl, g->hp, x + (size_t)n0 * x_ss, P);
  }
  return wg_fill_group(g, s->ci, s->h, s->w, s->pt, s->pl, g->hp, x, x_ss, n0, n, P);
}

// ---------------------------------------------------------------- filter transform

// U = G w G^T for a 3x3 w (row-major), G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
static void wg_filter_transform(const float w[9], float u[16]) {
  float t[4][3];  // G w
  for (int c = 0; c < 3; c++) {
    const float a = w[c], b = w[3 + c], d = w[6 + c];
    t[0][c] = a;
    t[1][c] = 0.5f * (a + b + d);
    t[2][c] = 0.5f * (a - b + d);
    t[3][c] = d;
  }
  for (int r = 0; r < 4; r++) {
    const float a = t[r][0], b = t[r][1], d = t[r][2];
    u[r * 4 + 0] = a;
    u[r * 4 + 1] = 0.5f * (a + b + d);
    u[r * 4 + 2] = 0.5f * (a - b + d);
    u[r * 4 + 3] = d;
  }
}

// Upk[xi][o/4][i][o%4] = U[o][i][xi]; flip: w is the forward filter
// [ci'][co'][3][3] of a backward data pass (here co = ci', ci = co').
static void wg_pack_u(const CpuConvShape *s, const float *w, int flip, float *upk) {
  const size_t us = wg_u_stride(s);
  memset(upk, 0, sizeof(float) * us * WG_XI);
  for (int o = 0; o < s->co; o++)
    for (int i = 0; i < s->ci; i++) {
      float g[9], u[16];
      for (int k = 0; k < 9; k++)
        g[k] = flip ? w[((size_t)i * (size_t)s->co + (size_t)o) * 9 + (size_t)(8 - k)]
                    : w[((size_t)o * (size_t)s->ci + (size_t)i) * 9 + (size_t)k];
      wg_filter_transform(g, u);
      for (int xi = 0; xi < WG_XI; xi++)
        upk[(size_t)xi * us + ((size_t)(o / 4) * (size_t)s->ci + (size_t)i) * 4 + (size_t)(o % 4)] = u[xi];
    }
}

#if DC_HAVE_X86
#define WG_AVX2 __attribute__((target("avx2,fma")))

// Column transform of one patch row (4 columns at r + c0..c3):
// (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
#define WG_ROW(r, a)                                                           \
  do {                                                                         \
    const __m256 d0_ = _mm256_loadu_ps((r) + c0), d1_ = _mm256_loadu_ps((r) + c1), \
                 d2_ = _mm256_loadu_ps((r) + c2), d3_ = _mm256_loadu_ps((r) + c3); \
    a[0] = _mm256_sub_ps(d0_, d2_);                                            \
    a[1] = _mm256_add_ps(d1_, d2_);                                            \
    a[2] = _mm256_sub_ps(d2_, d1_);                                            \
    a[3] = _mm256_sub_ps(d1_, d3_);                                            \
  } while (0)

// V[xi][c][t - t0] for the tiles [t0, t0 + nt) of a group (nt a multiple of 8):
// B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. The patch rows are
// transformed in the order 1, 2, 0, 3 to keep 12 vectors live, not 16.
WG_AVX2 static void wg_input_transform(const CpuConvShape *s, const WgGeom *g, const WgSrc *src,
                                       int t0, int nt, float *V, size_t v_cs) {
  const size_t v_xi = (size_t)s->ci * v_cs, rs = src->rs;
  const size_t c0 = src->col[0], c1 = src->col[1], c2 = src->col[2], c3 = src->col[3];
  for (int c = 0; c < s->ci; c++)
    for (int t = t0; t < t0 + nt; t += WG_LANES) {
      const int ty = t / g->trow, k = t % g->trow;
      const float *base = src->base + (size_t)c * src->cs + (size_t)(2 * ty) * rs + (size_t)k;
      float *v = V + (size_t)c * v_cs + (size_t)(t - t0);
      __m256 a0[4], a1[4], a2[4], a3[4];
      WG_ROW(base + rs, a1);
      WG_ROW(base + 2 * rs, a2);
      float *o = v + 4 * v_xi;  // rows 1 and 2 of V
      for (int j = 0; j < 4; j++, o += v_xi) {
        _mm256_storeu_ps(o, _mm256_add_ps(a1[j], a2[j]));
        _mm256_storeu_ps(o + 4 * v_xi, _mm256_sub_ps(a2[j], a1[j]));
      }
      WG_ROW(base, a0);
      o = v;
      for (int j = 0; j < 4; j++, o += v_xi) _mm256_storeu_ps(o, _mm256_sub_ps(a0[j], a2[j]));
      WG_ROW(base + 3 * rs, a3);
      o = v + 12 * v_xi;
      for (int j = 0; j < 4; j++, o += v_xi) _mm256_storeu_ps(o, _mm256_sub_ps(a1[j], a3[j]));
    }
}
#undef WG_ROW

typedef struct {
  const CpuConvShape *s;
  WgGeom g;
  const float *x;
  size_t x_ss;
  float *y;
  size_t y_ss;
  int accumulate;
  const float *upk;
  float *bufs;
  size_t buf_stride;
} WgFwd;

// The 2x2 outputs of 8 tiles (rows y0, y1 of 8 lanes each: columns 2tx, 2tx+1)
// into y for output channel o.
WG_AVX2 static void wg_store(const WgFwd *c, int n0, int o, int ty, int k, __m256 y00, __m256 y01,
                             __m256 y10, __m256 y11) {
  const CpuConvShape *s = c->s;
  const WgGeom *g = &c->g;
  const __m256 lo0 = _mm256_unpacklo_ps(y00, y01), hi0 = _mm256_unpackhi_ps(y00, y01);
  const __m256 lo1 = _mm256_unpacklo_ps(y10, y11), hi1 = _mm256_unpackhi_ps(y10, y11);
  const __m256 r[2][2] = {{_mm256_permute2f128_ps(lo0, hi0, 0x20), _mm256_permute2f128_ps(lo0, hi0, 0x31)},
                          {_mm256_permute2f128_ps(lo1, hi1, 0x20), _mm256_permute2f128_ps(lo1, hi1, 0x31)}};
  const size_t plane = (size_t)s->oh * (size_t)s->ow;
  const int tx = k % g->seg;
  if (g->group == 1 && 2 * (tx + WG_LANES) <= s->ow) {  // 16 columns of one sample
    if (n0 >= s->n) return;
    float *d = c->y + (size_t)n0 * c->y_ss + (size_t)o * plane + (size_t)(2 * ty) * (size_t)s->ow + (size_t)(2 * tx);
    for (int i = 0; i < 2 && 2 * ty + i < s->oh; i++, d += s->ow) {
      __m256 a = r[i][0], b = r[i][1];
      if (c->accumulate) {
        a = _mm256_add_ps(a, _mm256_loadu_ps(d));
        b = _mm256_add_ps(b, _mm256_loadu_ps(d + 8));
      }
      _mm256_storeu_ps(d, a);
      _mm256_storeu_ps(d + 8, b);
    }
    return;
  }
  float v[2][16];  // row i, 2 * lane + column
  for (int i = 0; i < 2; i++) {
    _mm256_storeu_ps(v[i], r[i][0]);
    _mm256_storeu_ps(v[i] + 8, r[i][1]);
  }
  for (int l = 0; l < WG_LANES; l++) {
    const int kk = k + l, n = n0 + kk / g->seg, x0 = 2 * (kk % g->seg);
    if (n >= s->n || x0 >= s->ow) continue;
    float *d = c->y + (size_t)n * c->y_ss + (size_t)o * plane + (size_t)(2 * ty) * (size_t)s->ow;
    for (int i = 0; i < 2 && 2 * ty + i < s->oh; i++)
      for (int j = 0; j < 2 && x0 + j < s->ow; j++) {
        float *e = d + (size_t)i * (size_t)s->ow + (size_t)(x0 + j);
        *e = c->accumulate ? *e + v[i][2 * l + j] : v[i][2 * l + j];
      }
  }
}

// y = A^T M A for the tiles [t0, t0 + nt) of the group from n0, A^T = [1 1 1 0; 0 1 -1 -1].
WG_AVX2 static void wg_output_transform(const WgFwd *c, int n0, int t0, int nt, const float *M) {
  const CpuConvShape *s = c->s;
  const size_t m_xi = (size_t)s->co * (size_t)c->g.tb;
  for (int o = 0; o < s->co; o++)
    for (int t = t0; t < t0 + nt; t += WG_LANES) {
      const float *m = M + (size_t)o * (size_t)c->g.tb + (size_t)(t - t0);
      __m256 sr[4][2];
      for (int i = 0; i < 4; i++) {
        const __m256 m0 = _mm256_loadu_ps(m + (size_t)(4 * i) * m_xi),
                     m1 = _mm256_loadu_ps(m + (size_t)(4 * i + 1) * m_xi),
                     m2 = _mm256_loadu_ps(m + (size_t)(4 * i + 2) * m_xi),
                     m3 = _mm256_loadu_ps(m + (size_t)(4 * i + 3) * m_xi);
        sr[i][0] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        sr[i][1] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
      }
      __m256 y[2][2];
      for (int j = 0; j < 2; j++) {
        y[0][j] = _mm256_add_ps(_mm256_add_ps(sr[0][j], sr[1][j]), sr[2][j]);
        y[1][j] = _mm256_sub_ps(_mm256_sub_ps(sr[1][j], sr[2][j]), sr[3][j]);
      }
      wg_store(c, n0, o, t / c->g.trow, t % c->g.trow, y[0][0], y[0][1], y[1][0], y[1][1]);
    }
}

WG_AVX2 static void wg_fwd_task(void *vctx, int grp, int thread) {
  const WgFwd *c = vctx;
  const CpuConvShape *s = c->s;
  const WgGeom *g = &c->g;
  float *P = c->bufs + (size_t)thread * c->buf_stride;
  float *V = P + wg_p_floats(s, g);
  float *M = V + (size_t)WG_XI * (size_t)s->ci * (size_t)g->tb;
  const int n0 = grp * g->group;
  const WgSrc src = wg_fill_input(s, g, c->x, c->x_ss, n0, s->n, P);
  const size_t us = wg_u_stride(s);
  for (int t0 = 0; t0 < g->tiles; t0 += g->tb) {
    const int nt = cpu_min(g->tb, g->tiles - t0);
    wg_input_transform(s, g, &src, t0, nt, V, (size_t)g->tb);
    for (int xi = 0; xi < WG_XI; xi++)
      cpu_pw_gemm_avx2(s->co, s->ci, nt, c->upk + (size_t)xi * us,
                       V + (size_t)xi * (size_t)s->ci * (size_t)g->tb, (size_t)g->tb,
                       M + (size_t)xi * (size_t)s->co * (size_t)g->tb, (size_t)g->tb, 0);
    wg_output_transform(c, n0, t0, nt, M);
  }
}

#endif

// ---------------------------------------------------------------- entry points

void cpu_conv_wino_avx2_fwd(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                            const float *w, int flip, float *y, size_t y_ss, int accumulate,
                            float *ws) {
#if DC_HAVE_X86
  NAO_ASSERT(cpu_conv_wino_avx2_fits(s));
  WgFwd c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.g = wg_geom(s);
  c.x = x;
  c.x_ss = x_ss;
  c.y = y;
  c.y_ss = y_ss;
  c.accumulate = accumulate;
  wg_pack_u(s, w, flip, ws);
  c.upk = ws;
  c.bufs = ws + WG_XI * wg_u_stride(s);
  c.buf_stride = wg_fwd_thread_floats(s, &c.g);
  tp_run(tp, (int)cpu_div_up((size_t)s->n, (size_t)c.g.group), wg_fwd_task, &c);
#else
  (void)tp, (void)s, (void)x, (void)x_ss, (void)w, (void)flip, (void)y, (void)y_ss;
  (void)accumulate, (void)ws;
  nao_internal("cpu_conv_wino_avx2_fwd called on a build without x86 support");
#endif
}
