// tests/tools/make_imagenet_folder.c — writes an ImageNet-format folder of
// generated images for tests and benchmarks (nothing is downloaded).
//
//   make_imagenet_folder OUT [--classes K] [--train N] [--val M] [--size WxH]
//                        [--quality Q] [--noise A] [--seed S] [--odd]
//
// OUT/train/<class>/<image>.JPEG and OUT/val/<class>/..., classes named like
// ImageNet's synsets. Each image is a smooth pattern in its class's colour
// with texture and noise (so JPEG sizes resemble photographs'), a pure
// function of (seed, split, class, index). Without --size the sizes vary
// (landscape, portrait, some smaller than 224). --odd adds the awkward files
// the real ImageNet has and then some, to train/: a PNG named .JPEG, a CMYK
// JPEG (Adobe, inverted), a grayscale JPEG, a progressive JPEG, an RGBA PNG,
// a nested subfolder, an upper-case extension (all readable); a truncated
// JPEG, an empty file, a text file named .JPEG and a BMP (unreadable to
// naoc); and a notes.txt that no loader should list. OUT/manifest.txt lists
// every odd file with "readable" or "unreadable".
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>

#include "runtime/rng.h"

typedef struct {
  const char *out;
  int classes, train, val, w, h, quality, odd;
  double noise;
  uint64_t seed;
} Options;

static void die(const char *what, const char *path) {
  fprintf(stderr, "make_imagenet_folder: %s: %s: %s\n", path, what, strerror(errno));
  exit(1);
}

static void mkdir_p(const char *path) {
  if (mkdir(path, 0755) != 0 && errno != EEXIST) die("mkdir", path);
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) die("write", path);
}

// ---------------------------------------------------------------- pixels

// RGB (h, w, 3) of image (split, cls, idx): class colour, a smooth wave
// pattern, a finer texture and per-pixel noise.
static uint8_t *make_pixels(const Options *o, int split, int cls, int idx, int w, int h) {
  Rng r;
  rng_derive(&r, o->seed, (uint64_t)split << 48 ^ (uint64_t)cls << 24 ^ (uint64_t)idx);
  double base[3], hue = 6.283185307 * cls / (o->classes + 1);
  for (int c = 0; c < 3; c++) base[c] = 128 + 80 * cos(hue + c * 2.0944);
  double fx = 0.005 + 0.03 * rng_uniform(&r), fy = 0.005 + 0.03 * rng_uniform(&r);
  double px = 6.28 * rng_uniform(&r), py = 6.28 * rng_uniform(&r);
  double tx = 0.2 + 0.4 * rng_uniform(&r), ty = 0.2 + 0.4 * rng_uniform(&r);
  uint8_t *pix = malloc((size_t)w * h * 3);
  if (!pix) die("malloc", "pixels");
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double wave = 60 * sin(fx * x + px) * cos(fy * y + py);
      double tex = 0.4 * o->noise * sin(tx * x + 0.7 * ty * y) * sin(ty * y - 0.3 * tx * x);
      for (int c = 0; c < 3; c++) {
        double n = o->noise * (rng_uniform(&r) - 0.5) * 2;
        double v = base[c] + wave * (c == cls % 3 ? 1.0 : 0.5) + tex + n;
        pix[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  return pix;
}

// ---------------------------------------------------------------- writers

// comps 1 (gray), 3 (RGB) or 4 (CMYK, Adobe-inverted as Photoshop writes).
static void write_jpeg(const char *path, const uint8_t *pix, int w, int h, int comps, int quality, int progressive,
                       size_t cut) {
  struct jpeg_compress_struct ci;
  struct jpeg_error_mgr jerr;
  ci.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&ci);
  unsigned char *mem = NULL;
  unsigned long len = 0;
  jpeg_mem_dest(&ci, &mem, &len);
  ci.image_width = (JDIMENSION)w, ci.image_height = (JDIMENSION)h;
  ci.input_components = comps;
  ci.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_set_defaults(&ci);
  jpeg_set_quality(&ci, quality, TRUE);
  if (progressive) jpeg_simple_progression(&ci);
  jpeg_start_compress(&ci, TRUE);
  while (ci.next_scanline < ci.image_height) {
    JSAMPROW row = (JSAMPROW)(pix + (size_t)ci.next_scanline * w * comps);
    jpeg_write_scanlines(&ci, &row, 1);
  }
  jpeg_finish_compress(&ci);
  jpeg_destroy_compress(&ci);
  write_bytes(path, mem, cut && cut < len ? cut : len);
  free(mem);
}

static void write_png(const char *path, const uint8_t *pix, int w, int h, int rgba) {
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  im.width = (png_uint_32)w, im.height = (png_uint_32)h;
  im.format = rgba ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&im, path, 0, pix, 0, NULL)) {
    fprintf(stderr, "make_imagenet_folder: %s: %s\n", path, im.message);
    exit(1);
  }
}

static void write_bmp(const char *path, int w, int h) {
  size_t row = ((size_t)w * 3 + 3) & ~(size_t)3, size = 54 + row * h;
  uint8_t *b = calloc(1, size);
  b[0] = 'B', b[1] = 'M';
  for (int i = 0; i < 4; i++) {
    b[2 + i] = (uint8_t)(size >> (8 * i));
    b[18 + i] = (uint8_t)((unsigned)w >> (8 * i));
    b[22 + i] = (uint8_t)((unsigned)h >> (8 * i));
  }
  b[10] = 54, b[14] = 40, b[26] = 1, b[28] = 24;
  write_bytes(path, b, size);
  free(b);
}

// ---------------------------------------------------------------- folder

static void class_name(char *buf, size_t n, int k) { snprintf(buf, n, "n%08d", 1440764 + 1013 * k); }

static void size_of(const Options *o, Rng *r, int *w, int *h) {
  if (o->w > 0) {
    *w = o->w, *h = o->h;
    return;
  }
  static const int sizes[][2] = {{500, 375}, {375, 500}, {320, 240}, {640, 480}, {200, 150}, {90, 60}, {333, 500}};
  int k = (int)rng_below(r, sizeof sizes / sizeof sizes[0]);
  *w = sizes[k][0], *h = sizes[k][1];
}

static void write_split(const Options *o, int split, int per_class) {
  char dir[4096], path[4300], cls[32];
  snprintf(dir, sizeof dir, "%s/%s", o->out, split == 0 ? "train" : "val");
  mkdir_p(dir);
  Rng r;
  rng_derive(&r, o->seed, 0x517e + (uint64_t)split);
  for (int k = 0; k < o->classes; k++) {
    class_name(cls, sizeof cls, k);
    snprintf(path, sizeof path, "%s/%s", dir, cls);
    mkdir_p(path);
    for (int i = 0; i < per_class; i++) {
      int w, h;
      size_of(o, &r, &w, &h);
      uint8_t *pix = make_pixels(o, split, k, i, w, h);
      snprintf(path, sizeof path, "%s/%s/%s_%s_%05d.JPEG", dir, cls, cls, split ? "val" : "train", i);
      write_jpeg(path, pix, w, h, 3, o->quality, 0, 0);
      free(pix);
    }
  }
}

static void odd_file(FILE *manifest, const Options *o, const char *rel, int readable) {
  fprintf(manifest, "train/%s %s\n", rel, readable ? "readable" : "unreadable");
  (void)o;
}

static void write_odd(const Options *o) {
  char path[4300], c[3][32], sub[4300];
  for (int k = 0; k < 3; k++) class_name(c[k], sizeof c[0], k % o->classes);
  snprintf(path, sizeof path, "%s/manifest.txt", o->out);
  FILE *m = fopen(path, "w");
  if (!m) die("open", path);
  int w = 300, h = 200;
  uint8_t *rgb = make_pixels(o, 2, 0, 0, w, h);
  uint8_t *cmyk = malloc((size_t)w * h * 4), *gray = malloc((size_t)w * h), *rgba = malloc((size_t)w * h * 4);
  for (int i = 0; i < w * h; i++) {
    gray[i] = rgb[3 * i + 1];
    for (int ch = 0; ch < 3; ch++) cmyk[4 * i + ch] = rgb[3 * i + ch];  // inverted C, M, Y = R, G, B
    cmyk[4 * i + 3] = (uint8_t)(255 - i % 40);                            // inverted K: a little black
    memcpy(rgba + 4 * i, rgb + 3 * i, 3);
    rgba[4 * i + 3] = (uint8_t)(i % 256);
  }
#define ODD(cls, name) (snprintf(path, sizeof path, "%s/train/%s/%s", o->out, c[cls], name), \
                        snprintf(sub, sizeof sub, "%s/%s", c[cls], name), path)
  write_png(ODD(0, "odd_png_named.JPEG"), rgb, w, h, 0), odd_file(m, o, sub, 1);
  write_jpeg(ODD(1, "odd_cmyk.JPEG"), cmyk, w, h, 4, 90, 0, 0), odd_file(m, o, sub, 1);
  write_jpeg(ODD(2, "odd_gray.JPEG"), gray, w, h, 1, 90, 0, 0), odd_file(m, o, sub, 1);
  write_jpeg(ODD(0, "odd_progressive.JPEG"), rgb, w, h, 3, 90, 1, 0), odd_file(m, o, sub, 1);
  write_png(ODD(1, "odd_rgba.png"), rgba, w, h, 1), odd_file(m, o, sub, 1);
  write_jpeg(ODD(2, "odd_upper.JpEg"), rgb, w, h, 3, 75, 0, 0), odd_file(m, o, sub, 1);
  snprintf(path, sizeof path, "%s/train/%s/sub", o->out, c[1]);
  mkdir_p(path);
  write_jpeg(ODD(1, "sub/nested.jpg"), rgb, w, h, 3, 90, 0, 0), odd_file(m, o, sub, 1);
  write_jpeg(ODD(0, "odd_truncated.JPEG"), rgb, w, h, 3, 90, 0, 4000), odd_file(m, o, sub, 0);
  write_bytes(ODD(1, "odd_empty.JPEG"), "", 0), odd_file(m, o, sub, 0);
  write_bytes(ODD(2, "odd_text.JPEG"), "not an image\n", 13), odd_file(m, o, sub, 0);
  write_bmp(ODD(2, "odd_bitmap.bmp"), 40, 30), odd_file(m, o, sub, 0);
  write_bytes(ODD(0, "notes.txt"), "not listed\n", 11);
#undef ODD
  fclose(m);
  free(rgb), free(cmyk), free(gray), free(rgba);
}

static int parse_int(const char *s, int lo, int hi, const char *opt) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*end || v < lo || v > hi) {
    fprintf(stderr, "make_imagenet_folder: %s: '%s' is not an integer in %d..%d\n", opt, s, lo, hi);
    exit(2);
  }
  return (int)v;
}

int main(int argc, char **argv) {
  Options o = {NULL, 3, 4, 2, 0, 0, 90, 0, 12.0, 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--odd")) o.odd = 1;
    else if (a[0] == '-' && !v) return fprintf(stderr, "make_imagenet_folder: %s needs a value\n", a), 2;
    else if (!strcmp(a, "--classes")) o.classes = parse_int(v, 1, 100000, a), i++;
    else if (!strcmp(a, "--train")) o.train = parse_int(v, 0, 1000000, a), i++;
    else if (!strcmp(a, "--val")) o.val = parse_int(v, 0, 1000000, a), i++;
    else if (!strcmp(a, "--quality")) o.quality = parse_int(v, 1, 100, a), i++;
    else if (!strcmp(a, "--noise")) o.noise = parse_int(v, 0, 255, a), i++;
    else if (!strcmp(a, "--seed")) o.seed = (uint64_t)parse_int(v, 0, 2000000000, a), i++;
    else if (!strcmp(a, "--size")) {
      if (sscanf(v, "%dx%d", &o.w, &o.h) != 2 || o.w < 1 || o.h < 1 || o.w > 20000 || o.h > 20000)
        return fprintf(stderr, "make_imagenet_folder: --size: '%s' is not WxH\n", v), 2;
      i++;
    } else if (a[0] != '-' && !o.out) o.out = a;
    else return fprintf(stderr, "make_imagenet_folder: unknown argument '%s'\n", a), 2;
  }
  if (!o.out) {
    fprintf(stderr, "usage: make_imagenet_folder OUT [--classes K] [--train N] [--val M] [--size WxH] "
                    "[--quality Q] [--noise A] [--seed S] [--odd]\n");
    return 2;
  }
  mkdir_p(o.out);
  write_split(&o, 0, o.train);
  if (o.val > 0) write_split(&o, 1, o.val);
  if (o.odd) write_odd(&o);
  return 0;
}
