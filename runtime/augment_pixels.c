// runtime/augment_pixels.c — the per-pixel work on large images: bilinear
// resampling, colour jitter and normalisation (augment.h).
//
// Written with GCC/Clang vector extensions (4 floats), which compile to SSE
// or NEON at the default -O2, so the loader's hot loops run 4 pixels at a
// time on every target; the only intrinsics are SSE's min and max (with a
// portable fallback). The arithmetic is
// torchvision's, operation for operation (see augment.h); tails shorter
// than 4 go through the same vector code on a padded copy, so every pixel
// gets the very same operations whatever its position.
//
// Colour jitter and normalisation are fused into at most two passes over
// the image: the adjustments before contrast (and the grey mean contrast
// needs), then contrast, the adjustments after it and the normalisation.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/augment.h"

#ifdef __SSE__
#include <xmmintrin.h>
#endif

typedef float f4 __attribute__((vector_size(16)));
typedef int32_t i4 __attribute__((vector_size(16)));
typedef uint8_t u8x4 __attribute__((vector_size(4)));

static inline f4 f4_load(const float *p) {
  f4 v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void f4_store(float *p, f4 v) { memcpy(p, &v, sizeof v); }
static inline f4 f4_set(float x) { return (f4){x, x, x, x}; }
static inline f4 f4_sel(i4 m, f4 a, f4 b) { return (f4)((m & (i4)a) | (~m & (i4)b)); }
#ifdef __SSE__  // one instruction instead of a compare and three logic ops
static inline f4 f4_min(f4 a, f4 b) { return (f4)_mm_min_ps((__m128)a, (__m128)b); }
static inline f4 f4_max(f4 a, f4 b) { return (f4)_mm_max_ps((__m128)a, (__m128)b); }
#else
static inline f4 f4_min(f4 a, f4 b) { return f4_sel(a < b, a, b); }
static inline f4 f4_max(f4 a, f4 b) { return f4_sel(a > b, a, b); }
#endif
static inline f4 f4_clamp01(f4 v) { return f4_min(f4_max(v, f4_set(0.0f)), f4_set(1.0f)); }
static inline f4 f4_from_u8(const uint8_t *p) {
  u8x4 b;
  memcpy(&b, p, sizeof b);
  return __builtin_convertvector(b, f4);
}

// ---------------------------------------------------------------- resampling

// Source columns [lo, hi) of one uint8 RGB row as floats (3 per pixel).
static void row_to_float(const uint8_t *row, int n, float *out) {
  int i = 0;
  for (; i + 4 <= 3 * n; i += 4) f4_store(out + i, f4_from_u8(row + i));
  for (; i < 3 * n; i++) out[i] = row[i];
}

// One row through the horizontal taps: 3 floats per output pixel. Reads and
// writes one float past each pixel (rowf and out carry a padding float).
static void resample_row(const float *rowf, int lo, const AugTaps *tx, float *out) {
  for (int i = 0; i < tx->n; i++) {
    const float *p = rowf + (size_t)(tx->start[i] - lo) * 3;
    const float *w = tx->w + (size_t)i * tx->max_taps;
    f4 acc = f4_set(0.0f);
    for (int k = 0; k < tx->count[i]; k++) acc += f4_set(w[k]) * f4_load(p + 3 * k);
    f4_store(out + 3 * i, acc);
  }
}

void aug_resample(const uint8_t *src, size_t stride, int x0, int y0, const AugTaps *tx, const AugTaps *ty,
                  float **tmp, size_t *tmp_cap, float *out) {
  int rows = ty->hi - ty->lo, ow = tx->n, oh = ty->n, cols = tx->hi - tx->lo;
  size_t row_len = (size_t)ow * 3, pitch = (row_len + 4) & ~(size_t)3;  // room for the padding float
  size_t srcf_len = (size_t)cols * 3 + 4;
  size_t need = ((size_t)rows + 1) * pitch + srcf_len;
  if (need > *tmp_cap) {
    free(*tmp);
    *tmp = xmalloc(need * sizeof **tmp);
    *tmp_cap = need;
  }
  float *h = *tmp, *acc = h + (size_t)rows * pitch, *rowf = acc + pitch;
  for (int r = 0; r < rows; r++) {
    row_to_float(src + (size_t)(ty->lo + r - y0) * stride + (size_t)(tx->lo - x0) * 3, cols, rowf);
    rowf[3 * cols] = 0.0f;
    resample_row(rowf, tx->lo, tx, h + (size_t)r * pitch);
  }
  size_t plane = (size_t)ow * oh;
  for (int y = 0; y < oh; y++) {
    const float *w = ty->w + (size_t)y * ty->max_taps;
    memset(acc, 0, pitch * sizeof *acc);
    for (int k = 0; k < ty->count[y]; k++) {
      const float *hr = h + (size_t)(ty->start[y] + k - ty->lo) * pitch;
      f4 wk = f4_set(w[k] * (1.0f / 255.0f));
      for (size_t j = 0; j < pitch; j += 4) f4_store(acc + j, f4_load(acc + j) + wk * f4_load(hr + j));
    }
    float *o0 = out + (size_t)y * ow, *o1 = o0 + plane, *o2 = o1 + plane;
    for (int x = 0; x < ow; x++) o0[x] = acc[3 * x], o1[x] = acc[3 * x + 1], o2[x] = acc[3 * x + 2];
  }
}

// ---------------------------------------------------------------- colour, 4 pixels at a time

typedef struct {
  f4 r, g, b;
} Px4;

static inline f4 gray4(Px4 p) { return f4_set(0.2989f) * p.r + f4_set(0.587f) * p.g + f4_set(0.114f) * p.b; }

static inline Px4 blend4(Px4 p, f4 f, f4 rest) {
  return (Px4){f4_clamp01(f * p.r + rest), f4_clamp01(f * p.g + rest), f4_clamp01(f * p.b + rest)};
}

// torchvision's _rgb2hsv, the shift modulo 1, and _hsv2rgb, with the
// divisions folded into one: h = (numerator of the max channel's case) /
// (6 cr), and v s = cr. Equal to torchvision's to float rounding (~1e-7).
static inline Px4 hue4(Px4 p, f4 shift) {
  f4 one = f4_set(1.0f), zero = f4_set(0.0f);
  f4 maxc = f4_max(p.r, f4_max(p.g, p.b)), minc = f4_min(p.r, f4_min(p.g, p.b));
  f4 cr = maxc - minc;
  f4 div = f4_sel(maxc == minc, one, cr);
  f4 num = f4_sel(maxc == p.r, p.g - p.b,
                  f4_sel(maxc == p.g, f4_set(2.0f) * div + p.b - p.r, f4_set(4.0f) * div + p.r - p.g));
  f4 h = num / (f4_set(6.0f) * div) + one;  // in [5/6, 11/6]: fmod(., 1) is one subtraction
  h = f4_sel(h >= one, h - one, h);
  h = h + shift;                            // Python's % 1.0 of a value in [-0.5, 1.5)
  h = f4_sel(h < zero, h + one, f4_sel(h >= one, h - one, h));
  f4 h6 = h * f4_set(6.0f);
  f4 k[3] = {f4_set(5.0f) + h6, f4_set(3.0f) + h6, f4_set(1.0f) + h6};
  f4 c[3];
  for (int i = 0; i < 3; i++) {  // channel = v - v s clamp(min(k, 4 - k), 0, 1), k = (n + 6 h) mod 6
    f4 kk = f4_sel(k[i] >= f4_set(6.0f), k[i] - f4_set(6.0f), k[i]);
    f4 x = f4_min(kk, f4_set(4.0f) - kk);
    c[i] = maxc - cr * f4_min(f4_max(x, zero), one);
  }
  return (Px4){c[0], c[1], c[2]};
}

// One adjustment (brightness, saturation, hue; contrast uses its mean).
static inline Px4 adjust4(Px4 p, int op, const AugJitter *j, float mean) {
  float f = (float)j->factor[op];
  switch (op) {
    case 0: return (Px4){f4_clamp01(f4_set(f) * p.r), f4_clamp01(f4_set(f) * p.g), f4_clamp01(f4_set(f) * p.b)};
    case 1: return blend4(p, f4_set(f), f4_set((float)(1.0 - j->factor[1]) * mean));
    case 2: return blend4(p, f4_set(f), f4_set((float)(1.0 - j->factor[2])) * gray4(p));
    default: return hue4(p, f4_set(f));
  }
}

typedef struct {
  int ops[4], n;       // adjustments of this pass, in order
  int normalize;
  f4 mean[3], inv_std[3];  // normalisation: (x - mean) * (1 / std)
  float contrast_mean;
} Pass;

// Applies a pass to 4 pixels at (r, g, b); returns their grey sum after it.
static inline f4 pass4(const Pass *ps, const AugJitter *j, float *r, float *g, float *b) {
  Px4 p = {f4_load(r), f4_load(g), f4_load(b)};
  for (int k = 0; k < ps->n; k++) p = adjust4(p, ps->ops[k], j, ps->contrast_mean);
  f4 gs = gray4(p);
  if (ps->normalize) {
    p.r = (p.r - ps->mean[0]) * ps->inv_std[0];
    p.g = (p.g - ps->mean[1]) * ps->inv_std[1];
    p.b = (p.b - ps->mean[2]) * ps->inv_std[2];
  }
  f4_store(r, p.r), f4_store(g, p.g), f4_store(b, p.b);
  return gs;
}

// Runs a pass over a planar (3, hw) image; returns the grey mean after it.
static double run_pass(const Pass *ps, const AugJitter *j, float *img, size_t hw) {
  float *r = img, *g = img + hw, *b = img + 2 * hw;
  double total = 0;
  f4 sum = f4_set(0.0f);
  size_t i = 0;
  for (; i + 4 <= hw; i += 4) {
    sum += pass4(ps, j, r + i, g + i, b + i);
    if ((i & 1023) == 1020) total += (double)sum[0] + sum[1] + sum[2] + sum[3], sum = f4_set(0.0f);
  }
  total += (double)sum[0] + sum[1] + sum[2] + sum[3];
  if (i < hw) {  // the tail, padded with zeros (grey 0: the sum is unchanged)
    float t[3][4] = {{0}};
    size_t n = hw - i;
    for (int c = 0; c < 3; c++) memcpy(t[c], img + c * hw + i, n * sizeof(float));
    f4 gs = pass4(ps, j, t[0], t[1], t[2]);
    for (size_t k = 0; k < n; k++) total += gs[k];
    for (int c = 0; c < 3; c++) memcpy(img + c * hw + i, t[c], n * sizeof(float));
  }
  return total / (double)hw;
}

void aug_jitter_normalize(float *img, size_t hw, const AugJitter *j, const float *mean, const float *std) {
  Pass first = {.n = 0}, second = {.n = 0};
  int split = -1;  // contrast's place in the order
  AugJitter none = {{0, 1, 2, 3}, {1, 1, 1, 0}, {0, 0, 0, 0}};
  if (!j) j = &none;
  for (int k = 0; k < 4; k++)
    if (j->order[k] == 1 && j->on[1]) split = k;
  for (int k = 0; k < 4; k++) {
    int op = j->order[k];
    if (!j->on[op] || op == 1) continue;
    Pass *ps = split >= 0 && k < split ? &first : &second;
    ps->ops[ps->n++] = op;
  }
  if (mean) {
    second.normalize = 1;
    for (int c = 0; c < 3; c++) second.mean[c] = f4_set(mean[c]), second.inv_std[c] = f4_set(1.0f / std[c]);
  }
  if (split >= 0) {
    second.contrast_mean = (float)run_pass(&first, j, img, hw);
    memmove(second.ops + 1, second.ops, (size_t)second.n * sizeof *second.ops);
    second.ops[0] = 1;
    second.n++;
  }
  if (second.n > 0 || second.normalize) run_pass(&second, j, img, hw);
}

void aug_jitter_apply(float *img, size_t hw, const AugJitter *j) { aug_jitter_normalize(img, hw, j, NULL, NULL); }

static void one_op(float *img, size_t hw, int op, double f) {
  AugJitter j = {{op, (op + 1) % 4, (op + 2) % 4, (op + 3) % 4}, {1, 1, 1, 0}, {0, 0, 0, 0}};
  j.factor[op] = f;
  j.on[op] = 1;
  aug_jitter_apply(img, hw, &j);
}

void aug_adjust_brightness(float *img, size_t hw, double f) { one_op(img, hw, 0, f); }
void aug_adjust_contrast(float *img, size_t hw, double f) { one_op(img, hw, 1, f); }
void aug_adjust_saturation(float *img, size_t hw, double f) { one_op(img, hw, 2, f); }
void aug_adjust_hue(float *img, size_t hw, double shift) { one_op(img, hw, 3, shift); }

void aug_normalize(float *img, int c, size_t hw, const float *mean, const float *std) {
  for (int ch = 0; ch < c; ch++) {
    float m = mean[ch], s = std[ch];
    float *p = img + (size_t)ch * hw;
    size_t i = 0;
    for (; i + 4 <= hw; i += 4) f4_store(p + i, (f4_load(p + i) - f4_set(m)) / f4_set(s));
    for (; i < hw; i++) p[i] = (p[i] - m) / s;
  }
}
