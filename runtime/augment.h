// runtime/augment.h — the reference recipes' image transforms (NAO-SPEC §1d),
// as torchvision defines them, on float32 images.
//
// Small images (CIFAR-10, Fashion-MNIST), in torchvision's order:
//   RandomCrop(size, padding=pad_crop) with zero padding -> RandomHorizontalFlip
//   -> ToTensor -> Normalize(mean, std) -> Cutout(cutout) (the reference's:
//   centre uniform over the image, square [c - L/2, c + L/2) clipped at the
//   borders, always applied, zeroing the normalised values).
// ImageNet train: RandomResizedCrop(rrc_size, scale, ratio) with torchvision's
//   10 attempts and centre-crop fallback, bilinear -> flip -> ColorJitter
//   (brightness, contrast, saturation, hue: a random order of the four, each
//   factor uniform) -> Normalize. Eval: Resize(resize) of the short side,
//   bilinear -> CenterCrop(crop) -> Normalize.
//
// Bilinear resampling is PIL's (what torchvision uses on PIL images): a
// triangle filter whose support widens with the downscaling factor
// (antialiasing), weights normalised per output pixel, horizontal pass then
// vertical. We keep float precision between the passes where PIL rounds to
// uint8. Colour jitter follows torchvision's tensor functions (float, clamped
// to [0, 1] after each adjustment; hue through HSV), which equal its PIL path
// up to that path's uint8 rounding.
//
// Randomness: every function draws from the Rng it is given, in a fixed
// order, so a sample's transform is a pure function of its stream.
#ifndef NAO_AUGMENT_H
#define NAO_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/data.h"
#include "runtime/rng.h"

typedef struct AugmentSpec {
  // small images
  int pad_crop;          // RandomCrop padding (0: no crop)
  int flip;              // RandomHorizontalFlip(p = 0.5) (all kinds)
  int cutout;            // Cutout side after normalisation (0: off)
  // ImageNet train
  int rrc_size;          // RandomResizedCrop output side (0: eval geometry)
  double rrc_scale[2];   // area fraction range (0.08, 1)
  double rrc_ratio[2];   // aspect ratio range (3/4, 4/3)
  double jitter[4];      // brightness, contrast, saturation, hue (0: that one off)
  // ImageNet eval
  int resize;            // short side (256)
  int crop;              // centre crop side (224)
  int dct_scale;         // JPEG: decode at a reduced DCT scale when the output allows it
  // all
  float mean[3], std[3];
} AugmentSpec;

// The reference recipe of a kind: train (augmented) or eval transforms.
// cifar10 train: pad 4, flip, cutout 16 (the final-training recipe; the
// search uses no cutout: set cutout = 0). fashion-mnist train: pad 2, flip.
// imagenet train: RRC 224, flip, jitter (0.4, 0.4, 0.4, 0.2), DCT-scaled
// decoding; eval: 256/224 from the full-size decode (torchvision's result up
// to PIL's uint8 rounding).
// synthetic: nothing (its data is already zero-mean, unit-variance).
void augment_preset(AugmentSpec *a, DataKind kind, int train);
// Checks a spec against a kind; -1 with a message naming the field.
int augment_check(const AugmentSpec *a, DataKind kind, int channels, char *err, size_t errlen);

// ---------------------------------------------------------------- small images

// src (c, h, w) uint8 -> out (c, h, w) float: crop, flip, normalise, cutout.
// Draws: crop top, crop left (when pad_crop), flip (when flip), cutout
// centre y, x (when cutout).
void aug_small(const uint8_t *src, int c, int h, int w, const AugmentSpec *a, Rng *r, float *out);
// Cutout on a normalised (c, h, w) image. Draws centre y then x.
void aug_cutout(float *img, int c, int h, int w, int side, Rng *r);

// ---------------------------------------------------------------- geometry

typedef struct {
  int x, y, w, h;  // torchvision's (j, i, w, h)
} AugCrop;

// RandomResizedCrop.get_params of an image width x height.
void aug_rrc_params(int width, int height, const double scale[2], const double ratio[2], Rng *r, AugCrop *out);
// Resize(short side = resize) then CenterCrop(crop), as one resampling of the
// original: output pixel x samples the source at off_x + (x + 0.5) * scale_x.
void aug_eval_geometry(int width, int height, int resize, int crop, double *scale_x, double *off_x,
                       double *scale_y, double *off_y);

// ---------------------------------------------------------------- resampling

// One axis of a resampling: output i reads source pixels
// start[i] .. start[i] + count[i] - 1 with weights w[i * max_taps + k].
typedef struct {
  int n;
  int max_taps;
  int *start, *count;
  float *w;
  int lo, hi;  // the smallest start and the largest start + count
} AugTaps;

// PIL's bilinear coefficients: centre of output i = off + (i + 0.5) * scale,
// support max(scale, 1), taps clipped to [lo, hi) of the source axis. With
// mirror, output i takes what output n - 1 - i would (a flip folded in).
void aug_taps(AugTaps *t, int n, double scale, double off, int lo, int hi, int mirror);
void aug_taps_free(AugTaps *t);

// Resamples interleaved uint8 RGB (rows of `stride` bytes; pixel (x, y) of
// the axes' coordinates is at src[(y - y0) * stride + (x - x0) * 3]) into a
// planar float (3, ty.n, tx.n) image in [0, 1]. tmp holds (ty.hi - ty.lo)
// * tx.n * 3 floats (grown as needed).
void aug_resample(const uint8_t *src, size_t stride, int x0, int y0, const AugTaps *tx, const AugTaps *ty,
                  float **tmp, size_t *tmp_cap, float *out);

// ---------------------------------------------------------------- colour

typedef struct {
  int order[4];         // a permutation of 0 brightness, 1 contrast, 2 saturation, 3 hue
  double factor[4];     // brightness, contrast, saturation factors; hue shift
  int on[4];
} AugJitter;

// ColorJitter.get_params: order (randperm(4)), then the four factors in the
// order brightness, contrast, saturation, hue, each only when enabled.
void aug_jitter_params(const double jitter[4], Rng *r, AugJitter *j);
// Applies the adjustments in j's order to a planar (3, hw) image in [0, 1].
void aug_jitter_apply(float *img, size_t hw, const AugJitter *j);
// The same (j may be NULL: no adjustment), then (x - mean) / std per channel
// (mean NULL: none), fused into at most two passes.
void aug_jitter_normalize(float *img, size_t hw, const AugJitter *j, const float *mean, const float *std);
void aug_adjust_brightness(float *img, size_t hw, double f);
void aug_adjust_contrast(float *img, size_t hw, double f);
void aug_adjust_saturation(float *img, size_t hw, double f);
void aug_adjust_hue(float *img, size_t hw, double shift);

// (img - mean) / std per channel of a planar (c, hw) image.
void aug_normalize(float *img, int c, size_t hw, const float *mean, const float *std);

#endif
