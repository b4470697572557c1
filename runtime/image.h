// runtime/image.h — decoding image files to 8-bit RGB, by content.
//
// The format is sniffed from the bytes, never the name (ImageNet has a PNG
// and CMYK JPEGs named .JPEG): JPEG (libjpeg-turbo), PNG (libpng), binary
// PGM/PPM. Grayscale, palette and CMYK become RGB; alpha is dropped (as PIL's
// convert("RGB") does, without compositing). CMYK JPEGs are read with Adobe's
// inverted polarity and converted with PIL's formula, so results equal
// torchvision's loader.
//
// Decoding is planned by a callback that sees the image's full size once the
// header is read and asks for a DCT scale (JPEG only: scale_num/8, so an image
// can be decoded no larger than the crop needs) and a region of the scaled
// image; JPEG decodes only that region's rows and (iMCU-aligned) columns.
// Other formats decode whole. ImgBuf says which region its pixels are.
//
// A truncated or corrupt file is an error (returned, never a crash): libjpeg's
// errors and its "premature end" warning, a JPEG without an end-of-image
// marker near its end, libpng's errors. Messages say what is wrong, without
// the path (the caller knows it).
#ifndef NAO_IMAGE_H
#define NAO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

enum {
  IMG_MAX_SIDE = 65535,
  IMG_MAX_PIXELS = 1 << 27,   // refuse larger images (memory per worker)
};

typedef enum {
  IMG_UNKNOWN = 0, IMG_JPEG, IMG_PNG, IMG_PNM, IMG_BMP, IMG_GIF, IMG_TIFF, IMG_WEBP
} ImgFormat;

ImgFormat img_sniff(const uint8_t *data, size_t n);
const char *img_format_name(ImgFormat f);

typedef struct {
  uint8_t *pix;       // RGB rows (owned, reused between decodes)
  size_t cap;
  size_t stride;      // bytes per row
  int x0, y0, w, h;   // the decoded region, in the scaled image's coordinates
  int full_w, full_h; // the scaled image's size
  int src_w, src_h;   // the image's size at full scale
  ImgFormat format;
} ImgBuf;

typedef struct {
  int scale_num;      // JPEG: decode at scale_num / 8 (1..8); always 8 when the format cannot scale
  int x0, y0, w, h;   // wanted region of the scaled image (clipped to it)
} ImgRequest;

// Called once the header is known. Returns 0, or -1 to stop (msg set).
typedef int (*ImgPlanFn)(void *user, int width, int height, int can_scale, ImgRequest *req);

// Size of a side scaled by num/8, as libjpeg-turbo computes it.
int img_scaled_size(int side, int scale_num);

int img_decode(const uint8_t *data, size_t n, ImgPlanFn plan, void *user, ImgBuf *out, char *msg,
               size_t msglen);
// The whole image at full scale.
int img_decode_full(const uint8_t *data, size_t n, ImgBuf *out, char *msg, size_t msglen);
void img_buf_free(ImgBuf *b);

// Format back ends (image_jpeg.c, image_png.c); same contract as img_decode.
int img_decode_jpeg(const uint8_t *data, size_t n, ImgPlanFn plan, void *user, ImgBuf *out, char *msg,
                    size_t msglen);
int img_decode_png(const uint8_t *data, size_t n, ImgPlanFn plan, void *user, ImgBuf *out, char *msg,
                   size_t msglen);
// Makes room for h rows of `stride` bytes.
void img_buf_reserve(ImgBuf *b, size_t stride, int h);

#endif
