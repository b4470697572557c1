// runtime/augment.c — presets, the small-image transforms (crop, flip,
// cutout), crop geometry, resampling coefficients and colour-jitter draws
// (augment.h). The per-pixel work on large images (resampling, colour,
// normalisation) is in augment_pixels.c.
//
// Everything is float32 arithmetic in the order torchvision's tensor path
// uses, so results match it to rounding. Only aug_taps allocates.
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
      if (train) a->pad_crop = 2, a->flip = 1;  // as runtime/recipe.c's fashion-mnist preset
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
