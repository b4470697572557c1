// runtime/image_jpeg.c — JPEG decoding with libjpeg-turbo (image.h).
//
// libjpeg reports fatal errors through error_exit; ours longjmps back to
// img_decode_jpeg with the library's message. Warnings are counted; the
// "premature end of file" warning (a truncated file, which libjpeg would pad
// with grey) is an error here. Only the requested rows are decoded
// (jpeg_skip_scanlines, then an abort after the last), and only the requested
// columns, widened to iMCU boundaries (jpeg_crop_scanline). Because decoding
// stops early, a truncated file is also recognised by its missing
// end-of-image marker, so the result never depends on the crop.
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "runtime/image.h"

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
  int eof;
} JpegErr;

static void jerr_exit(j_common_ptr c) {
  JpegErr *e = (JpegErr *)c->err;
  (*c->err->format_message)(c, e->msg);
  longjmp(e->jump, 1);
}

static void jerr_emit(j_common_ptr c, int level) {
  if (level >= 0) return;  // trace messages
  JpegErr *e = (JpegErr *)c->err;
  if (c->err->msg_code == JWRN_JPEG_EOF) e->eof = 1;
  c->err->num_warnings++;
}

static void jerr_output(j_common_ptr c) { (void)c; }

// An EOI marker (FF D9) in the file's last bytes. Entropy-coded data never
// holds FF D9 (FF is stuffed), so finding one means the file was not cut.
static int has_eoi(const uint8_t *d, size_t n) {
  size_t span = n < 8192 ? n : 8192;
  for (size_t i = n - span; i + 1 < n; i++)
    if (d[i] == 0xFF && d[i + 1] == 0xD9) return 1;
  return 0;
}

static inline uint8_t muldiv255(int a, int b) {
  int t = a * b + 128;
  return (uint8_t)(((t >> 8) + t) >> 8);
}

// Adobe-inverted CMYK rows to RGB in place (PIL's cmyk2rgb after "CMYK;I").
static void cmyk_to_rgb(uint8_t *pix, size_t stride, int w, int h) {
  for (int y = 0; y < h; y++) {
    uint8_t *row = pix + (size_t)y * stride;
    for (int x = 0; x < w; x++) {
      const uint8_t *s = row + 4 * x;
      int nk = s[3];  // 255 - k with k = 255 - stored
      uint8_t r = (uint8_t)(nk - muldiv255(255 - s[0], nk));
      uint8_t g = (uint8_t)(nk - muldiv255(255 - s[1], nk));
      uint8_t b = (uint8_t)(nk - muldiv255(255 - s[2], nk));
      row[3 * x] = r, row[3 * x + 1] = g, row[3 * x + 2] = b;
    }
  }
}

static void clip_request(ImgRequest *q, int fw, int fh) {
  if (q->x0 < 0) q->w += q->x0, q->x0 = 0;
  if (q->y0 < 0) q->h += q->y0, q->y0 = 0;
  if (q->x0 >= fw) q->x0 = fw - 1;
  if (q->y0 >= fh) q->y0 = fh - 1;
  if (q->w < 1) q->w = 1;
  if (q->h < 1) q->h = 1;
  if (q->x0 + q->w > fw) q->w = fw - q->x0;
  if (q->y0 + q->h > fh) q->h = fh - q->y0;
}

// Reads the requested rows; libjpeg errors longjmp out of here.
static void read_region(struct jpeg_decompress_struct *ci, ImgRequest *q, ImgBuf *out) {
  JDIMENSION xoff = (JDIMENSION)q->x0, width = (JDIMENSION)q->w;
  if (width < ci->output_width) jpeg_crop_scanline(ci, &xoff, &width);
  else xoff = 0, width = ci->output_width;
  int comps = ci->out_color_space == JCS_CMYK ? 4 : 3;
  img_buf_reserve(out, (size_t)ci->output_width * comps, q->h);
  if (q->y0 > 0) jpeg_skip_scanlines(ci, (JDIMENSION)q->y0);
  int rows = 0;
  while (rows < q->h) {
    JSAMPROW row = out->pix + (size_t)rows * out->stride;
    if (jpeg_read_scanlines(ci, &row, 1) != 1) break;
    rows++;
  }
  if (comps == 4) cmyk_to_rgb(out->pix, out->stride, (int)width, rows);
  out->x0 = (int)xoff, out->y0 = q->y0;
  out->w = (int)width, out->h = rows;
}

int img_decode_jpeg(const uint8_t *data, size_t n, ImgPlanFn plan, void *user, ImgBuf *out, char *msg,
                    size_t msglen) {
  struct jpeg_decompress_struct ci;
  JpegErr err;
  memset(&err, 0, sizeof err);
  ci.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jerr_exit;
  err.pub.emit_message = jerr_emit;
  err.pub.output_message = jerr_output;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&ci);
    snprintf(msg, msglen, "corrupt JPEG: %s", err.msg);
    return -1;
  }
  jpeg_create_decompress(&ci);
  jpeg_mem_src(&ci, data, (unsigned long)n);
  jpeg_read_header(&ci, TRUE);
  int w = (int)ci.image_width, h = (int)ci.image_height, rc = 0;
  ImgRequest q = {8, 0, 0, w, h};
  if (!has_eoi(data, n)) rc = (snprintf(msg, msglen, "truncated JPEG (no end-of-image marker)"), -1);
  else if ((long long)w * h > IMG_MAX_PIXELS) rc = (snprintf(msg, msglen, "JPEG of %dx%d pixels is too large", w, h), -1);
  else if (plan && plan(user, w, h, 1, &q) != 0) rc = -1;
  if (rc != 0) {
    jpeg_destroy_decompress(&ci);
    return -1;
  }
  ci.scale_num = (unsigned)(q.scale_num >= 1 && q.scale_num <= 8 ? q.scale_num : 8);
  ci.scale_denom = 8;
  ci.out_color_space = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&ci);
  out->full_w = (int)ci.output_width, out->full_h = (int)ci.output_height;
  out->src_w = w, out->src_h = h;
  clip_request(&q, out->full_w, out->full_h);
  read_region(&ci, &q, out);
  if (err.eof || out->h < q.h) {
    jpeg_destroy_decompress(&ci);
    return snprintf(msg, msglen, "truncated JPEG (premature end of data)"), -1;
  }
  jpeg_abort_decompress(&ci);
  jpeg_destroy_decompress(&ci);
  return 0;
}
