// runtime/augment.c — crops, flips, cutout, PIL-style bilinear resampling,
// colour jitter and normalisation (augment.h).
//
// Everything is float32 arithmetic in the order torchvision's tensor path
// uses, so results match it to rounding. No function allocates except
// aug_taps (tables) and aug_resample (its growable intermediate).
#include "runtime/augment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"

// ---------------------------------------------------------------- presets

static const float CIFAR_MEAN[3] = {0.49139968f, 0.48215827f, 0.44653124f};
static const float CIFAR_STD[3] = {0.24703233f, 0.24348505f, 0.26158768f};
static const float IMAGENET_MEAN[3] = {0.485f, 0.456f, 0.406f};
static const float IMAGENET_STD[3] = {0.229f, 0.224f, 0.225f};

void augment_preset(AugmentSpec *a, DataKind kind, int train) {
  memset(a, 0, sizeof *a);
  for (int c = 0; c < 3; c++) a->mean[c] = 0, a->std[c] = 1;
  switch (kind) {
    case DATA_CIFAR10:
      memcpy(a->mean, CIFAR_MEAN, sizeof a->mean);
      memcpy(a->std, CIFAR_STD, sizeof a->std);
      if (train) a->pad_crop = 4, a->flip = 1, a->cutout = 16;
      break;
    case DATA_FASHION_MNIST:  // NAO-SPEC decision O4
      a->mean[0] = 0.2860f;
      a->std[0] = 0.3530f;
      if (train) a->pad_crop = 4, a->flip = 1;
      break;
    case DATA_IMAGENET:
      memcpy(a->mean, IMAGENET_MEAN, sizeof a->mean);
      memcpy(a->std, IMAGENET_STD, sizeof a->std);
      if (train) {
        a->dct_scale = 1;  // speed; eval keeps torchvision's full-size decode
        a->rrc_size = 224;
        a->rrc_scale[0] = 0.08, a->rrc_scale[1] = 1.0;
        a->rrc_ratio[0] = 3.0 / 4.0, a->rrc_ratio[1] = 4.0 / 3.0;
        a->flip = 1;
        a->jitter[0] = a->jitter[1] = a->jitter[2] = 0.4;
        a->jitter[3] = 0.2;
      } else {
        a->resize = 256;
        a->crop = 224;
      }
      break;
    default:
      break;
  }
}

int augment_check(const AugmentSpec *a, DataKind kind, int channels, char *err, size_t errlen) {
  for (int c = 0; c < channels && c < 3; c++)
    if (!(a->std[c] > 0) || !isfinite(a->mean[c]))
      return snprintf(err, errlen, "normalisation of channel %d: std must be > 0", c), -1;
  if (a->pad_crop < 0 || a->pad_crop > 1024 || a->cutout < 0 || a->cutout > 8192)
    return snprintf(err, errlen, "crop padding or cutout size out of range"), -1;
  if (kind != DATA_IMAGENET) return 0;
  if (a->rrc_size > 0) {
    if (a->rrc_size > 8192 || !(a->rrc_scale[0] > 0) || a->rrc_scale[1] < a->rrc_scale[0] ||
        !(a->rrc_ratio[0] > 0) || a->rrc_ratio[1] < a->rrc_ratio[0])
      return snprintf(err, errlen, "random resized crop: size, scale or ratio range invalid"), -1;
  } else if (a->crop <= 0 || a->crop > 8192 || a->resize < a->crop || a->resize > 8192) {
    return snprintf(err, errlen, "imagenet eval transform needs 0 < crop <= resize <= 8192 (got %d, %d)",
                    a->crop, a->resize), -1;
  }
  if (a->jitter[0] < 0 || a->jitter[1] < 0 || a->jitter[2] < 0 || a->jitter[3] < 0 || a->jitter[3] > 0.5)
    return snprintf(err, errlen, "colour jitter: factors must be >= 0 and hue <= 0.5"), -1;
  return 0;
}

// ---------------------------------------------------------------- small images

void aug_cutout(float *img, int c, int h, int w, int side, Rng *r) {
  int cy = (int)rng_below(r, (uint64_t)h), cx = (int)rng_below(r, (uint64_t)w);
  int half = side / 2;
  int y1 = cy - half < 0 ? 0 : cy - half, y2 = cy + half > h ? h : cy + half;
  int x1 = cx - half < 0 ? 0 : cx - half, x2 = cx + half > w ? w : cx + half;
  for (int ch = 0; ch < c; ch++)
    for (int y = y1; y < y2; y++)
      for (int x = x1; x < x2; x++) img[((size_t)ch * h + y) * w + x] = 0.0f;
}

void aug_small(const uint8_t *src, int c, int h, int w, const AugmentSpec *a, Rng *r, float *out) {
  int pad = a->pad_crop;
  int top = pad ? (int)rng_below(r, 2 * (uint64_t)pad + 1) : pad;
  int left = pad ? (int)rng_below(r, 2 * (uint64_t)pad + 1) : pad;
  int flip = a->flip ? rng_uniform(r) < 0.5 : 0;
  for (int ch = 0; ch < c; ch++) {
    float mean = a->mean[ch < 3 ? ch : 0], std = a->std[ch < 3 ? ch : 0];
    float zero = (0.0f - mean) / std;  // the padding, normalised
    const uint8_t *plane = src + (size_t)ch * h * w;
    for (int y = 0; y < h; y++) {
      int sy = y + top - pad;
      float *row = out + ((size_t)ch * h + y) * w;
      for (int x = 0; x < w; x++) {
        int sx = (flip ? w - 1 - x : x) + left - pad;
        if (sy < 0 || sy >= h || sx < 0 || sx >= w) row[x] = zero;
        else row[x] = ((float)plane[sy * w + sx] / 255.0f - mean) / std;
      }
    }
  }
  if (a->cutout > 0) aug_cutout(out, c, h, w, a->cutout, r);
}

// ---------------------------------------------------------------- geometry

void aug_rrc_params(int width, int height, const double scale[2], const double ratio[2], Rng *r, AugCrop *out) {
  double area = (double)width * height;
  double lr0 = log(ratio[0]), lr1 = log(ratio[1]);
  for (int attempt = 0; attempt < 10; attempt++) {
    double target = area * (scale[0] + (scale[1] - scale[0]) * rng_uniform(r));
    double aspect = exp(lr0 + (lr1 - lr0) * rng_uniform(r));
    double fw = rint(sqrt(target * aspect)), fh = rint(sqrt(target / aspect));  // Python round: half to even
    if (fw > 0 && fw <= width && fh > 0 && fh <= height) {
      int w = (int)fw, h = (int)fh;
      out->y = (int)rng_below(r, (uint64_t)(height - h + 1));
      out->x = (int)rng_below(r, (uint64_t)(width - w + 1));
      out->w = w, out->h = h;
      return;
    }
  }
  // Fallback: the whole image, or its centre clipped to the ratio range.
  double in_ratio = (double)width / height;
  int w = width, h = height;
  if (in_ratio < ratio[0]) h = (int)rint(w / ratio[0]);
  else if (in_ratio > ratio[1]) w = (int)rint(h * ratio[1]);
  out->w = w, out->h = h;
  out->y = (height - h) / 2;
  out->x = (width - w) / 2;
}

void aug_eval_geometry(int width, int height, int resize, int crop, double *scale_x, double *off_x,
                       double *scale_y, double *off_y) {
  int new_w, new_h;
  if (width <= height) {
    new_w = resize;
    new_h = (int)((double)resize * height / width);
  } else {
    new_h = resize;
    new_w = (int)((double)resize * width / height);
  }
  int top = (int)rint((new_h - crop) / 2.0), left = (int)rint((new_w - crop) / 2.0);
  *scale_x = (double)width / new_w;
  *scale_y = (double)height / new_h;
  *off_x = left * *scale_x;
  *off_y = top * *scale_y;
}

// ---------------------------------------------------------------- resampling

void aug_taps(AugTaps *t, int n, double scale, double off, int lo, int hi, int mirror) {
  double fscale = scale < 1.0 ? 1.0 : scale;
  double support = fscale;  // bilinear: support 1, widened when downscaling
  t->n = n;
  t->max_taps = (int)ceil(support) * 2 + 1;
  t->start = xmalloc((size_t)n * sizeof *t->start);
  t->count = xmalloc((size_t)n * sizeof *t->count);
  t->w = xcalloc((size_t)n * (size_t)t->max_taps, sizeof *t->w);
  t->lo = hi, t->hi = lo;
  for (int i = 0; i < n; i++) {
    int o = mirror ? n - 1 - i : i;
    double center = off + (o + 0.5) * scale;
    int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
    if (xmin < lo) xmin = lo;
    if (xmax > hi) xmax = hi;
    if (xmax - xmin > t->max_taps) xmax = xmin + t->max_taps;
    if (xmax <= xmin) {  // centre outside [lo, hi): nearest edge pixel
      xmin = center < lo ? lo : hi - 1;
      xmax = xmin + 1;
    }
    double sum = 0;
    int cnt = xmax - xmin;
    for (int pass = 0; pass < 2; pass++)  // the sum, then the normalised weights
      for (int k = 0; k < cnt; k++) {
        double x = (xmin + k - center + 0.5) / fscale;
        double wk = x > -1.0 && x < 1.0 ? 1.0 - fabs(x) : 0.0;
        if (pass == 0) sum += wk;
        else t->w[(size_t)i * t->max_taps + k] = (float)(sum != 0 ? wk / sum : 0);
      }
    t->start[i] = xmin;
    t->count[i] = cnt;
    if (xmin < t->lo) t->lo = xmin;
    if (xmax > t->hi) t->hi = xmax;
  }
}

void aug_taps_free(AugTaps *t) {
  free(t->start);
  free(t->count);
  free(t->w);
  memset(t, 0, sizeof *t);
}

// One row of interleaved RGB through the horizontal taps.
static void resample_row(const uint8_t *row, int x0, const AugTaps *tx, float *out) {
  for (int i = 0; i < tx->n; i++) {
    const uint8_t *p = row + (size_t)(tx->start[i] - x0) * 3;
    const float *w = tx->w + (size_t)i * tx->max_taps;
    float r = 0, g = 0, b = 0;
    for (int k = 0; k < tx->count[i]; k++, p += 3) {
      r += w[k] * p[0];
      g += w[k] * p[1];
      b += w[k] * p[2];
    }
    out[3 * i] = r, out[3 * i + 1] = g, out[3 * i + 2] = b;
  }
}

void aug_resample(const uint8_t *src, size_t stride, int x0, int y0, const AugTaps *tx, const AugTaps *ty,
                  float **tmp, size_t *tmp_cap, float *out) {
  int rows = ty->hi - ty->lo, ow = tx->n, oh = ty->n;
  size_t row_len = (size_t)ow * 3;
  size_t need = ((size_t)rows + 1) * row_len;  // + one accumulator row
  if (need > *tmp_cap) {
    free(*tmp);
    *tmp = xmalloc(need * sizeof **tmp);
    *tmp_cap = need;
  }
  float *h = *tmp, *acc = h + (size_t)rows * row_len;
  for (int r = 0; r < rows; r++) resample_row(src + (size_t)(ty->lo + r - y0) * stride, x0, tx, h + (size_t)r * row_len);
  size_t plane = (size_t)ow * oh;
  for (int y = 0; y < oh; y++) {
    const float *w = ty->w + (size_t)y * ty->max_taps;
    memset(acc, 0, row_len * sizeof *acc);
    for (int k = 0; k < ty->count[y]; k++) {
      const float *hr = h + (size_t)(ty->start[y] + k - ty->lo) * row_len;
      float wk = w[k] * (1.0f / 255.0f);
      for (size_t j = 0; j < row_len; j++) acc[j] += wk * hr[j];
    }
    float *o0 = out + (size_t)y * ow, *o1 = o0 + plane, *o2 = o1 + plane;
    for (int x = 0; x < ow; x++) o0[x] = acc[3 * x], o1[x] = acc[3 * x + 1], o2[x] = acc[3 * x + 2];
  }
}

// ---------------------------------------------------------------- colour

void aug_jitter_params(const double jitter[4], Rng *r, AugJitter *j) {
  for (int i = 0; i < 4; i++) j->order[i] = i;
  rng_shuffle(r, j->order, 4);
  for (int i = 0; i < 3; i++) {
    j->on[i] = jitter[i] > 0;
    j->factor[i] = 1.0;
    if (j->on[i]) {
      double lo = 1.0 - jitter[i] < 0 ? 0 : 1.0 - jitter[i], hi = 1.0 + jitter[i];
      j->factor[i] = lo + (hi - lo) * rng_uniform(r);
    }
  }
  j->on[3] = jitter[3] > 0;
  j->factor[3] = j->on[3] ? -jitter[3] + 2 * jitter[3] * rng_uniform(r) : 0;
}

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

static inline float gray_of(float r, float g, float b) { return 0.2989f * r + 0.587f * g + 0.114f * b; }

void aug_adjust_brightness(float *img, size_t hw, double f) {
  float ff = (float)f;
  for (size_t i = 0; i < 3 * hw; i++) img[i] = clamp01(ff * img[i]);
}

void aug_adjust_contrast(float *img, size_t hw, double f) {
  const float *r = img, *g = img + hw, *b = img + 2 * hw;
  double sum = 0;
  for (size_t i = 0; i < hw; i++) sum += gray_of(r[i], g[i], b[i]);
  float mean = (float)(sum / (double)hw), ff = (float)f, rest = (float)(1.0 - f) * mean;
  for (size_t i = 0; i < 3 * hw; i++) img[i] = clamp01(ff * img[i] + rest);
}

void aug_adjust_saturation(float *img, size_t hw, double f) {
  float *r = img, *g = img + hw, *b = img + 2 * hw, ff = (float)f, rf = (float)(1.0 - f);
  for (size_t i = 0; i < hw; i++) {
    float l = gray_of(r[i], g[i], b[i]) * rf;
    r[i] = clamp01(ff * r[i] + l);
    g[i] = clamp01(ff * g[i] + l);
    b[i] = clamp01(ff * b[i] + l);
  }
}

// torchvision's _rgb2hsv / _hsv2rgb for one pixel, with the hue shift between.
static void hue_pixel(float *pr, float *pg, float *pb, float shift) {
  float r = *pr, g = *pg, b = *pb;
  float maxc = fmaxf(r, fmaxf(g, b)), minc = fminf(r, fminf(g, b));
  int eqc = maxc == minc;
  float cr = maxc - minc;
  float s = cr / (eqc ? 1.0f : maxc), div = eqc ? 1.0f : cr;
  float rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div;
  float hh;
  if (maxc == r) hh = bc - gc;
  else if (maxc == g) hh = 2.0f + rc - bc;
  else hh = 4.0f + gc - rc;
  hh = fmodf(hh / 6.0f + 1.0f, 1.0f);
  hh += shift;
  hh -= floorf(hh);  // Python-style % 1.0
  if (hh >= 1.0f) hh = 0.0f;
  float v = maxc, h6 = hh * 6.0f, fi = floorf(h6), f = h6 - fi;
  int i = ((int)fi % 6 + 6) % 6;
  float p = clamp01(v * (1.0f - s)), q = clamp01(v * (1.0f - s * f)), t = clamp01(v * (1.0f - s * (1.0f - f)));
  switch (i) {
    case 0: *pr = v, *pg = t, *pb = p; break;
    case 1: *pr = q, *pg = v, *pb = p; break;
    case 2: *pr = p, *pg = v, *pb = t; break;
    case 3: *pr = p, *pg = q, *pb = v; break;
    case 4: *pr = t, *pg = p, *pb = v; break;
    default: *pr = v, *pg = p, *pb = q; break;
  }
}

void aug_adjust_hue(float *img, size_t hw, double shift) {
  float *r = img, *g = img + hw, *b = img + 2 * hw, sh = (float)shift;
  for (size_t i = 0; i < hw; i++) hue_pixel(&r[i], &g[i], &b[i], sh);
}

void aug_jitter_apply(float *img, size_t hw, const AugJitter *j) {
  for (int k = 0; k < 4; k++) {
    int op = j->order[k];
    if (!j->on[op]) continue;
    switch (op) {
      case 0: aug_adjust_brightness(img, hw, j->factor[0]); break;
      case 1: aug_adjust_contrast(img, hw, j->factor[1]); break;
      case 2: aug_adjust_saturation(img, hw, j->factor[2]); break;
      default: aug_adjust_hue(img, hw, j->factor[3]); break;
    }
  }
}

void aug_normalize(float *img, int c, size_t hw, const float *mean, const float *std) {
  for (int ch = 0; ch < c; ch++) {
    float m = mean[ch], s = std[ch];
    float *p = img + (size_t)ch * hw;
    for (size_t i = 0; i < hw; i++) p[i] = (p[i] - m) / s;
  }
}
