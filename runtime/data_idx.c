// runtime/data_idx.c — the idx format of (Fashion-)MNIST, plain or gzip.
//
// An idx file: 2 zero bytes, a type byte (0x08: unsigned byte), a dimension
// count, the dimensions as big-endian u32, then the data in C order. Images
// are idx3 (n, 28, 28), labels idx1 (n). zlib's gz* functions read both plain
// and gzip files. A file is refused (path + what) when its magic, dimensions
// or size are wrong, when it is cut short or has bytes after the declared
// data, when the image and label counts differ or a label is not 0..9. The
// buffer grows with the data actually read, so a forged header cannot make
// us allocate more than the file holds (plus one chunk).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "compiler/util.h"
#include "runtime/data_impl.h"

enum { IDX_CHUNK = 1 << 20, IDX_MAX_ITEMS = 100000000 };

typedef struct {
  gzFile gz;
  const char *path;
} IdxFile;

// zlib's message without the "path: " it puts in front.
static const char *gz_message(IdxFile *f, int *zerr) {
  const char *m = gzerror(f->gz, zerr);
  size_t n = strlen(f->path);
  if (strncmp(m, f->path, n) == 0 && m[n] == ':') m += n + (m[n + 1] == ' ' ? 2 : 1);
  return *zerr == Z_ERRNO ? strerror(errno) : m;
}

// Reads up to n bytes; returns the count, or -1 with the zlib error in err.
static long long idx_read(IdxFile *f, void *buf, size_t n, char *err, size_t errlen) {
  size_t got = 0;
  int zerr;
  while (got < n) {
    unsigned want = n - got > IDX_CHUNK ? IDX_CHUNK : (unsigned)(n - got);
    int r = gzread(f->gz, (char *)buf + got, want);
    if (r < 0) {
      const char *m = gz_message(f, &zerr);
      return data_fail(err, errlen, f->path, "%s: %s", zerr == Z_ERRNO ? "read failed" : "gzip data error", m);
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  // A gzip stream cut short reads as end of file; zlib flags it.
  const char *m = gz_message(f, &zerr);
  if (zerr == Z_BUF_ERROR) return data_fail(err, errlen, f->path, "truncated gzip stream (%s)", m);
  if (zerr != Z_OK && zerr != Z_STREAM_END) return data_fail(err, errlen, f->path, "gzip data error: %s", m);
  return (long long)got;
}

// "DIR/NAME.gz" if it exists, else "DIR/NAME".
static char *idx_path(const char *dir, const char *name) {
  StrBuf sb = {0};
  struct stat st;
  sb_printf(&sb, "%s/%s.gz", dir, name);
  if (stat(sb.data, &st) != 0) {
    sb.len = 0;
    sb_printf(&sb, "%s/%s", dir, name);
  }
  return sb_steal(&sb);
}

static int idx_header(IdxFile *f, int ndim, uint32_t *dims, char *err, size_t errlen) {
  unsigned char h[16];
  size_t need = 4 + 4 * (size_t)ndim;
  long long got = idx_read(f, h, need, err, errlen);
  if (got < 0) return -1;
  if ((size_t)got < need) return data_fail(err, errlen, f->path, "truncated: %lld bytes, shorter than the %zu-byte header", got, need);
  uint32_t magic = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
  uint32_t want = 0x0800u | (uint32_t)ndim;
  if (magic != want)
    return data_fail(err, errlen, f->path, "wrong magic 0x%08x (expected 0x%08x: unsigned bytes, %d dimension%s)",
                     magic, want, ndim, ndim > 1 ? "s" : "");
  for (int i = 0; i < ndim; i++) {
    const unsigned char *p = h + 4 + 4 * i;
    dims[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  }
  return 0;
}

// The payload of n bytes, then a check that nothing follows.
static uint8_t *idx_payload(IdxFile *f, size_t n, const char *what, char *err, size_t errlen) {
  uint8_t *buf = NULL;
  size_t got = 0, cap = 0;
  while (got < n) {
    size_t want = n - got < IDX_CHUNK ? n - got : IDX_CHUNK;
    if (got + want > cap) {
      cap = got + want > 2 * cap ? got + want : (2 * cap < n ? 2 * cap : n);
      buf = xrealloc(buf, cap);
    }
    long long r = idx_read(f, buf + got, want, err, errlen);
    if (r < 0) break;
    got += (size_t)r;
    if ((size_t)r < want) {
      data_fail(err, errlen, f->path, "truncated: the header declares %zu %s bytes but the file holds %zu", n, what, got);
      break;
    }
  }
  unsigned char extra;
  if (got == n) {
    long long r = idx_read(f, &extra, 1, err, errlen);
    if (r == 0) return buf;
    if (r > 0) data_fail(err, errlen, f->path, "oversized: data continues after the %zu %s bytes the header declares", n, what);
  }
  free(buf);
  return NULL;
}

static int idx_open(IdxFile *f, const char *path, char *err, size_t errlen) {
  f->path = path;
  f->gz = gzopen(path, "rb");
  if (!f->gz) return data_fail(err, errlen, path, "cannot open: %s", errno ? strerror(errno) : "out of memory");
  return 0;
}

static int load_images(DataSource *src, const char *path, int *n, uint8_t **pixels, char *err, size_t errlen) {
  IdxFile f;
  if (idx_open(&f, path, err, errlen) != 0) return -1;
  uint32_t d[3];
  int rc = idx_header(&f, 3, d, err, errlen);
  if (rc == 0 && (d[0] < 1 || d[0] > IDX_MAX_ITEMS))
    rc = data_fail(err, errlen, path, "image count %u out of range (1..%d)", d[0], IDX_MAX_ITEMS);
  if (rc == 0 && (d[1] != (uint32_t)src->h || d[2] != (uint32_t)src->w))
    rc = data_fail(err, errlen, path, "images are %ux%u, expected %dx%d for %s", d[1], d[2], src->h, src->w,
                   data_kind_name(src->opt.kind));
  if (rc == 0) {
    *pixels = idx_payload(&f, (size_t)d[0] * d[1] * d[2], "image", err, errlen);
    if (!*pixels) rc = -1;
    *n = (int)d[0];
  }
  gzclose(f.gz);
  return rc;
}

static int load_labels(DataSource *src, const char *path, int n_images, const char *images_path, int32_t **labels,
                       char *err, size_t errlen) {
  IdxFile f;
  if (idx_open(&f, path, err, errlen) != 0) return -1;
  uint32_t d[1];
  int rc = idx_header(&f, 1, d, err, errlen);
  if (rc == 0 && d[0] != (uint32_t)n_images)
    rc = data_fail(err, errlen, path, "count mismatch: %u labels but %d images in %s", d[0], n_images, images_path);
  uint8_t *raw = NULL;
  if (rc == 0 && !(raw = idx_payload(&f, d[0], "label", err, errlen))) rc = -1;
  gzclose(f.gz);
  if (rc != 0) return -1;
  *labels = xmalloc((size_t)n_images * sizeof **labels);
  for (int i = 0; i < n_images; i++) {
    if (raw[i] >= src->classes) {
      data_fail(err, errlen, path, "label %d of item %d out of range 0..%d", raw[i], i, src->classes - 1);
      free(raw);
      free(*labels);
      *labels = NULL;
      return -1;
    }
    (*labels)[i] = raw[i];
  }
  free(raw);
  return 0;
}

int idx_load_part(DataSource *src, int part, char *err, size_t errlen) {
  const char *prefix = part == 0 ? "train" : "t10k";
  char name[64];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
  char *ipath = idx_path(src->dir, name);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
  char *lpath = idx_path(src->dir, name);
  DataPart *p = &src->part[part];
  int rc = load_images(src, ipath, &p->n, &p->pixels, err, errlen);
  if (rc == 0) rc = load_labels(src, lpath, p->n, ipath, &p->labels, err, errlen);
  if (rc != 0) {
    free(p->pixels);
    p->pixels = NULL;
    p->n = 0;
  }
  free(ipath);
  free(lpath);
  return rc;
}
