// runtime/image.c — format sniffing, the decode dispatcher and binary PGM/PPM
// (image.h). JPEG and PNG live in image_jpeg.c and image_png.c.
#include "runtime/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"

ImgFormat img_sniff(const uint8_t *d, size_t n) {
  static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return IMG_JPEG;
  if (n >= 8 && memcmp(d, png, 8) == 0) return IMG_PNG;
  if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '6') return IMG_PNM;
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return IMG_BMP;
  if (n >= 4 && memcmp(d, "GIF8", 4) == 0) return IMG_GIF;
  if (n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0)) return IMG_TIFF;
  if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) return IMG_WEBP;
  return IMG_UNKNOWN;
}

const char *img_format_name(ImgFormat f) {
  static const char *const names[] = {"unknown", "JPEG", "PNG", "PNM", "BMP", "GIF", "TIFF", "WebP"};
  return (unsigned)f < sizeof names / sizeof names[0] ? names[f] : "?";
}

int img_scaled_size(int side, int scale_num) { return (int)(((long long)side * scale_num + 7) / 8); }

void img_buf_reserve(ImgBuf *b, size_t stride, int h) {
  size_t need = stride * (size_t)h;
  if (need > b->cap) {
    free(b->pix);
    b->pix = xmalloc(need);
    b->cap = need;
  }
  b->stride = stride;
}

void img_buf_free(ImgBuf *b) {
  free(b->pix);
  memset(b, 0, sizeof *b);
}

// ---------------------------------------------------------------- PGM / PPM

// Next header integer of a binary PNM, skipping whitespace and # comments.
static int pnm_int(const uint8_t *d, size_t n, size_t *pos, int *out) {
  size_t p = *pos;
  for (;;) {
    while (p < n && (d[p] == ' ' || d[p] == '\t' || d[p] == '\n' || d[p] == '\r')) p++;
    if (p < n && d[p] == '#') {
      while (p < n && d[p] != '\n') p++;
      continue;
    }
    break;
  }
  long v = 0;
  size_t start = p;
  while (p < n && d[p] >= '0' && d[p] <= '9' && v <= 1000000) v = v * 10 + (d[p++] - '0');
  if (p == start || v > 1000000) return -1;
  *out = (int)v;
  *pos = p;
  return 0;
}

static int decode_pnm(const uint8_t *d, size_t n, ImgPlanFn plan, void *user, ImgBuf *out, char *msg,
                      size_t msglen) {
  if (d[1] != '5' && d[1] != '6')
    return snprintf(msg, msglen, "unsupported PNM variant P%c (only binary P5/P6)", d[1]), -1;
  int ch = d[1] == '6' ? 3 : 1, w, h, maxval;
  size_t p = 2;
  if (pnm_int(d, n, &p, &w) || pnm_int(d, n, &p, &h) || pnm_int(d, n, &p, &maxval) || p >= n)
    return snprintf(msg, msglen, "malformed PNM header"), -1;
  p++;  // the single whitespace byte before the raster
  if (w < 1 || h < 1 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || (long long)w * h > IMG_MAX_PIXELS)
    return snprintf(msg, msglen, "PNM size %dx%d out of range", w, h), -1;
  if (maxval < 1 || maxval > 255) return snprintf(msg, msglen, "PNM maxval %d unsupported (1..255)", maxval), -1;
  if (n - p < (size_t)w * h * ch)
    return snprintf(msg, msglen, "PNM truncated: %zu raster bytes of %zu", n - p, (size_t)w * h * ch), -1;
  ImgRequest req = {8, 0, 0, w, h};
  if (plan && plan(user, w, h, 0, &req) != 0) return -1;
  img_buf_reserve(out, (size_t)w * 3, h);
  const uint8_t *s = d + p;
  for (size_t i = 0; i < (size_t)w * h; i++)
    for (int c = 0; c < 3; c++) {
      int v = s[i * ch + (ch == 3 ? c : 0)];
      out->pix[i * 3 + c] = (uint8_t)(maxval == 255 ? v : (v * 255 + maxval / 2) / maxval);
    }
  out->x0 = out->y0 = 0;
  out->w = out->full_w = out->src_w = w;
  out->h = out->full_h = out->src_h = h;
  return 0;
}

// ---------------------------------------------------------------- dispatch

int img_decode(const uint8_t *data, size_t n, ImgPlanFn plan, void *user, ImgBuf *out, char *msg, size_t msglen) {
  ImgFormat f = img_sniff(data, n);
  out->format = f;
  if (n == 0) return snprintf(msg, msglen, "empty file"), -1;
  switch (f) {
    case IMG_JPEG: return img_decode_jpeg(data, n, plan, user, out, msg, msglen);
    case IMG_PNG: return img_decode_png(data, n, plan, user, out, msg, msglen);
    case IMG_PNM: return decode_pnm(data, n, plan, user, out, msg, msglen);
    case IMG_UNKNOWN: return snprintf(msg, msglen, "not an image (unrecognised content)"), -1;
    default: return snprintf(msg, msglen, "unsupported image format %s", img_format_name(f)), -1;
  }
}

int img_decode_full(const uint8_t *data, size_t n, ImgBuf *out, char *msg, size_t msglen) {
  return img_decode(data, n, NULL, NULL, out, msg, msglen);
}
