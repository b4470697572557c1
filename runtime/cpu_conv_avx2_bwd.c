// runtime/cpu_conv_avx2_bwd.c — the backward data pass of strided dense
// convolutions (strides 1 or 2 per axis, not both 1) with the AVX2 forward
// tiles of cpu_conv_avx2.c.
//
// dx splits into sh*sw phases by (row mod sh, column mod sw). Phase (ry, rx)
// only receives the taps ky = ky0 + sh*j, kx = kx0 + sw*i with
// ky0 = (ry + pt) mod sh (likewise kx0), and then
//   dx[a*sh + ry][b*sw + rx] = sum dy[a + dy0 - j][b + dx0 - i] w[..][ky][kx],
// dy0 = (ry + pt - ky0) / sh: a stride-1 forward convolution of dy with the
// sub-filter transposed and flipped, padded nj-1-dy0 (negative: a crop). Per
// sample (one task) each phase runs the forward tiles into a per-thread buffer
// that is then written to its interleaved dx positions. Every dx value is
// written by exactly one phase of one task (0 for a phase no tap reaches).
#include <string.h>

#include "compiler/util.h"
#include "runtime/cpu_conv_internal.h"
#include "runtime/cpu_util.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

enum { BW_MAX_PHASES = 4 };

typedef struct {
  CpuConvShape ps;  // dy -> this phase of dx, as a stride-1 forward convolution
  int ry, rx, empty;
  DcCtx dc;         // its forward-tile context (weights, offsets)
} BwPhase;

typedef struct {
  const CpuConvShape *s;
  int nph;
  BwPhase ph[BW_MAX_PHASES];
  const float *dy;
  size_t dy_ss;
  float *dx;
  size_t dx_ss;
  int accumulate;
  float *scratch;  // per thread: padded dy, then the phase's output
  size_t pad_floats, stride;
} BwCtx;

static int bw_mod(int a, int m) {
  int r = a % m;
  return r < 0 ? r + m : r;
}

static int bw_count(int from, int total, int step) {  // from, from+step, ... < total
  return from < total ? (total - from + step - 1) / step : 0;
}

static size_t bw_round(size_t f) { return (f + 15) & ~(size_t)15; }

static void bw_phase(const CpuConvShape *s, int ry, int rx, BwPhase *ph) {
  memset(ph, 0, sizeof *ph);
  const int ky0 = bw_mod(ry + s->pt, s->sh), kx0 = bw_mod(rx + s->pl, s->sw);
  const int nj = bw_count(ky0, s->kh, s->sh), ni = bw_count(kx0, s->kw, s->sw);
  const int ha = bw_count(ry, s->h, s->sh), wb = bw_count(rx, s->w, s->sw);
  const int dy0 = (ry + s->pt - ky0) / s->sh, dx0 = (rx + s->pl - kx0) / s->sw;  // exact
  ph->ry = ry;
  ph->rx = rx;
  ph->empty = nj == 0 || ni == 0 || ha == 0 || wb == 0;
  CpuConvShape ps = {s->n, s->co, s->oh, s->ow, s->ci, ha, wb, nj, ni, 1, 1,
                     nj - 1 - dy0, ni - 1 - dx0, 1, s->algo};
  ph->ps = ps;
}

int cpu_conv_direct_avx2_bwd_fits(const CpuConvShape *s) {
  if (!cpu_conv_direct_avx2_available() || s->algo == CPU_CONV_PORTABLE || s->groups != 1) return 0;
  if (s->sh > 2 || s->sw > 2 || (s->sh == 1 && s->sw == 1)) return 0;
  for (int ry = 0; ry < s->sh; ry++)
    for (int rx = 0; rx < s->sw; rx++) {
      BwPhase ph;
      bw_phase(s, ry, rx, &ph);
      if (!ph.empty && !cpu_conv_direct_avx2_fits(&ph.ps)) return 0;
    }
  return 1;
}

// Shared: per phase, packed weights and offsets; per thread: the largest
// padded dy and phase output.
static void bw_sizes(const CpuConvShape *s, size_t *shared, size_t *pad, size_t *tmp) {
  *shared = *pad = *tmp = 0;
  for (int ry = 0; ry < s->sh; ry++)
    for (int rx = 0; rx < s->sw; rx++) {
      BwPhase ph;
      bw_phase(s, ry, rx, &ph);
      if (ph.empty) continue;
      DcPad p = dc_pad(&ph.ps);
      *shared += dc_wpk_floats(&ph.ps) + dc_toff_floats(&ph.ps);
      size_t pf = bw_round((size_t)ph.ps.ci * p.plane);
      size_t tf = bw_round((size_t)s->ci * (size_t)ph.ps.oh * (size_t)ph.ps.ow);
      *pad = pf > *pad ? pf : *pad;
      *tmp = tf > *tmp ? tf : *tmp;
    }
}

size_t cpu_conv_direct_avx2_bwd_ws_floats(const CpuConvShape *s, int threads) {
  size_t shared, pad, tmp;
  bw_sizes(s, &shared, &pad, &tmp);
  return shared + (size_t)threads * (pad + tmp);
}

// wpk[ci/4][co][j'][i'][4] = w[co][ci][ky0 + sh*(nj-1-j')][kx0 + sw*(ni-1-i')].
static void bw_pack(const CpuConvShape *s, const BwPhase *ph, const float *w, float *wpk) {
  const int nj = ph->ps.kh, ni = ph->ps.kw, cob = (s->ci + DC_CO - 1) / DC_CO;
  const int ky0 = bw_mod(ph->ry + s->pt, s->sh), kx0 = bw_mod(ph->rx + s->pl, s->sw);
  for (int b = 0; b < cob; b++)
    for (int o = 0; o < s->co; o++)
      for (int j = 0; j < nj; j++)
        for (int i = 0; i < ni; i++)
          for (int l = 0; l < DC_CO; l++) {
            const int c = b * DC_CO + l, ky = ky0 + s->sh * (nj - 1 - j), kx = kx0 + s->sw * (ni - 1 - i);
            float v = 0.0f;
            if (c < s->ci)
              v = w[(((size_t)o * (size_t)s->ci + (size_t)c) * (size_t)s->kh + (size_t)ky) * (size_t)s->kw + (size_t)kx];
            *wpk++ = v;
          }
}

// dx[c][a*sh + ry][b*sw + rx] (+)= t[c][a][b] for one phase of one sample.
static void bw_scatter(const BwCtx *c, const BwPhase *ph, const float *t, float *dx) {
  const CpuConvShape *s = c->s;
  const int ha = ph->ps.oh, wb = ph->ps.ow;
  for (int ch = 0; ch < s->ci; ch++)
    for (int a = 0; a < ha; a++) {
      float *restrict d = dx + ((size_t)ch * (size_t)s->h + (size_t)(a * s->sh + ph->ry)) * (size_t)s->w + (size_t)ph->rx;
      const float *restrict src = t ? t + ((size_t)ch * (size_t)ha + (size_t)a) * (size_t)wb : NULL;
      for (int b = 0; b < wb; b++) {
        const float v = src ? src[b] : 0.0f;
        d[(size_t)b * (size_t)s->sw] = c->accumulate ? d[(size_t)b * (size_t)s->sw] + v : v;
      }
    }
}

static void bw_task(void *vctx, int n, int thread) {
  const BwCtx *c = vctx;
  const CpuConvShape *s = c->s;
  float *pad = c->scratch + (size_t)thread * c->stride, *tmp = pad + c->pad_floats;
  const float *dy = c->dy + (size_t)n * c->dy_ss;
  float *dx = c->dx + (size_t)n * c->dx_ss;
  for (int k = 0; k < c->nph; k++) {
    const BwPhase *ph = &c->ph[k];
    if (ph->empty) {
      if (!c->accumulate) bw_scatter(c, ph, NULL, dx);
      continue;
    }
    dc_fill_pad(&ph->ps, &ph->dc.p, dy, pad);
    const int nvec = ph->ps.oh * ph->dc.p.vpr, cob = (s->ci + DC_CO - 1) / DC_CO;
    for (int b = 0; b < cob; b++)
      for (int v0 = 0; v0 < nvec; v0 += 3) {
        const int v[3] = {v0, cpu_min(v0 + 1, nvec - 1), cpu_min(v0 + 2, nvec - 1)};
        dc_tile(&ph->dc, pad, b, v, tmp);
      }
    bw_scatter(c, ph, tmp, dx);
  }
}

void cpu_conv_direct_avx2_bwd(ThreadPool *tp, const CpuConvShape *s, const float *dy,
                              size_t dy_ss, const float *w, float *dx, size_t dx_ss,
                              int accumulate, float *ws) {
  NAO_ASSERT(cpu_conv_direct_avx2_bwd_fits(s));
  BwCtx c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.dy = dy;
  c.dy_ss = dy_ss;
  c.dx = dx;
  c.dx_ss = dx_ss;
  c.accumulate = accumulate;
  float *shared = ws;
  for (int ry = 0; ry < s->sh; ry++)
    for (int rx = 0; rx < s->sw; rx++) {
      BwPhase *ph = &c.ph[c.nph++];
      bw_phase(s, ry, rx, ph);
      if (ph->empty) continue;
      ph->dc.s = &ph->ps;
      ph->dc.p = dc_pad(&ph->ps);
      ph->dc.steps = ph->ps.ci * ph->ps.kh * ph->ps.kw;
      float *wpk = shared;
      bw_pack(s, ph, w, wpk);
      ph->dc.wpk = wpk;
      shared += dc_wpk_floats(&ph->ps);
      int *toff = (int *)(void *)shared;
      dc_tap_offsets(&ph->ps, &ph->dc.p, toff);
      ph->dc.toff = toff;
      shared += dc_toff_floats(&ph->ps);
    }
  size_t sh_f, pad_f, tmp_f;
  bw_sizes(s, &sh_f, &pad_f, &tmp_f);
  c.scratch = shared;
  c.pad_floats = pad_f;
  c.stride = pad_f + tmp_f;
  tp_run(tp, s->n, bw_task, &c);
}
