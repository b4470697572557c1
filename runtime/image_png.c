// runtime/image_png.c — PNG decoding with libpng's simplified API (image.h).
//
// Every PNG colour type and depth is read as 8-bit non-premultiplied RGBA,
// then the alpha is dropped (PIL's convert("RGB") drops it too). libpng
// reports errors in image.message; nothing longjmps through our code.
#include <png.h>
#include <stdio.h>
#include <string.h>

#include "runtime/image.h"

int img_decode_png(const uint8_t *data, size_t n, ImgPlanFn plan, void *user, ImgBuf *out, char *msg,
                   size_t msglen) {
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&im, data, n))
    return snprintf(msg, msglen, "corrupt PNG: %s", im.message), -1;
  int w = (int)im.width, h = (int)im.height;
  if (w < 1 || h < 1 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || (long long)w * h > IMG_MAX_PIXELS) {
    png_image_free(&im);
    return snprintf(msg, msglen, "PNG of %dx%d pixels is out of range", w, h), -1;
  }
  ImgRequest q = {8, 0, 0, w, h};
  if (plan && plan(user, w, h, 0, &q) != 0) {
    png_image_free(&im);
    return -1;
  }
  im.format = PNG_FORMAT_RGBA;
  img_buf_reserve(out, (size_t)w * 4, h);
  if (!png_image_finish_read(&im, NULL, out->pix, (png_int_32)(w * 4), NULL)) {
    snprintf(msg, msglen, "corrupt PNG: %s", im.message);
    png_image_free(&im);
    return -1;
  }
  // RGBA -> RGB in place (rows packed at 3 * w).
  for (size_t i = 0; i < (size_t)w * h; i++) {
    out->pix[3 * i] = out->pix[4 * i];
    out->pix[3 * i + 1] = out->pix[4 * i + 1];
    out->pix[3 * i + 2] = out->pix[4 * i + 2];
  }
  out->stride = (size_t)w * 3;
  out->x0 = out->y0 = 0;
  out->w = out->full_w = out->src_w = w;
  out->h = out->full_h = out->src_h = h;
  return 0;
}
