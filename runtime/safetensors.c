// runtime/safetensors.c — safetensors reader with full validation, and an
// atomic writer (safetensors.h).
//
// Reading: the header is parsed into a JSON tree, every entry checked and
// copied into StTensor records (names in one arena), then the byte ranges are
// sorted and must tile the data section exactly. The data section is read
// into one 64-byte-aligned buffer; tensors point into it.
#include "runtime/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler/util.h"
#include "runtime/atomic_file.h"
#include "runtime/json.h"

struct SafeTensors {
  char *path;
  Arena names;          // tensor names, metadata keys and values
  StTensor *tensors;
  int n;
  StMeta *meta;
  int n_meta;
  int64_t *begin;       // per tensor: offset of its data in the data section
  void *data;           // data section (aligned)
  size_t data_len;
  void *moved;          // copies of tensors whose file offset is misaligned
};

static const struct {
  const char *name;
  size_t size;
} dtypes[ST_DTYPE_COUNT] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},   [ST_I8] = {"I8", 1},
    [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1},
    [ST_I16] = {"I16", 2},   [ST_U16] = {"U16", 2}, [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I32] = {"I32", 4}, [ST_U32] = {"U32", 4},
    [ST_F32] = {"F32", 4},   [ST_F64] = {"F64", 8}, [ST_I64] = {"I64", 8},
    [ST_U64] = {"U64", 8},
};

const char *st_dtype_name(StDtype d) { return (unsigned)d < ST_DTYPE_COUNT ? dtypes[d].name : "?"; }
size_t st_dtype_size(StDtype d) { return (unsigned)d < ST_DTYPE_COUNT ? dtypes[d].size : 0; }

int st_dtype_parse(const char *name, StDtype *out) {
  for (int i = 0; i < ST_DTYPE_COUNT; i++)
    if (strcmp(name, dtypes[i].name) == 0) {
      *out = (StDtype)i;
      return 0;
    }
  return -1;
}

int64_t st_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return -1;
    if (shape[i] && n > INT64_MAX / shape[i]) return -1;
    n *= shape[i];
  }
  return n;
}

const char *st_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
  size_t used = 0;
  used += (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < ndim && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (used < n) snprintf(buf + used, n - used, "]");
  return buf;
}

// ---------------------------------------------------------------- reading: header

typedef struct {
  const char *path;
  char *err;
  size_t errlen;
} StCtx;

static int st_fail(const StCtx *c, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int st_fail(const StCtx *c, const char *name, const char *fmt, ...) {
  char what[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (name) snprintf(c->err, c->errlen, "%s: tensor '%s': %s", c->path, name, what);
  else snprintf(c->err, c->errlen, "%s: %s", c->path, what);
  return -1;
}

static int parse_shape(const StCtx *c, const char *name, const JsonValue *v, StTensor *t) {
  if (!v || v->kind != JSON_ARRAY) return st_fail(c, name, "'shape' must be an array of integers");
  if (v->n > ST_MAX_DIMS) return st_fail(c, name, "shape has %d dimensions (at most %d)", v->n, ST_MAX_DIMS);
  t->ndim = v->n;
  for (int i = 0; i < v->n; i++) {
    const JsonValue *d = &v->items[i];
    if (d->kind != JSON_NUMBER || !d->is_int || d->integer < 0)
      return st_fail(c, name, "shape entry %d is not a non-negative integer", i);
    t->shape[i] = d->integer;
  }
  return 0;
}

static int parse_offsets(const StCtx *c, const char *name, const JsonValue *v, int64_t off[2]) {
  if (!v || v->kind != JSON_ARRAY || v->n != 2)
    return st_fail(c, name, "'data_offsets' must be an array of two integers");
  for (int i = 0; i < 2; i++) {
    const JsonValue *d = &v->items[i];
    if (d->kind != JSON_NUMBER || !d->is_int || d->integer < 0)
      return st_fail(c, name, "data_offsets[%d] is not a non-negative integer", i);
    off[i] = d->integer;
  }
  if (off[1] < off[0])
    return st_fail(c, name, "data_offsets [%lld, %lld] end before they begin", (long long)off[0],
                   (long long)off[1]);
  return 0;
}

// One tensor entry: exactly the keys dtype, shape, data_offsets.
static int parse_entry(const StCtx *c, const char *name, const JsonValue *v, StTensor *t,
                       int64_t off[2]) {
  if (v->kind != JSON_OBJECT) return st_fail(c, name, "entry is a %s, not an object", json_kind_name(v->kind));
  for (int i = 0; i < v->n; i++)
    if (strcmp(v->keys[i], "dtype") && strcmp(v->keys[i], "shape") && strcmp(v->keys[i], "data_offsets"))
      return st_fail(c, name, "unknown field '%s'", v->keys[i]);
  const JsonValue *dt = json_get(v, "dtype");
  if (!dt || dt->kind != JSON_STRING) return st_fail(c, name, "'dtype' missing or not a string");
  if (st_dtype_parse(dt->str, &t->dtype) != 0) return st_fail(c, name, "unknown dtype '%s'", dt->str);
  if (parse_shape(c, name, json_get(v, "shape"), t) != 0) return -1;
  if (parse_offsets(c, name, json_get(v, "data_offsets"), off) != 0) return -1;
  int64_t numel = st_numel(t->ndim, t->shape);
  size_t es = st_dtype_size(t->dtype);
  char sh[160];
  if (numel < 0 || numel > INT64_MAX / (int64_t)es)
    return st_fail(c, name, "shape %s is too large", st_shape_str(t->ndim, t->shape, sh, sizeof sh));
  if (numel * (int64_t)es != off[1] - off[0])
    return st_fail(c, name, "data_offsets [%lld, %lld] hold %lld bytes but %s %s needs %lld",
                   (long long)off[0], (long long)off[1], (long long)(off[1] - off[0]),
                   st_dtype_name(t->dtype), st_shape_str(t->ndim, t->shape, sh, sizeof sh),
                   (long long)(numel * (int64_t)es));
  t->nbytes = (size_t)(off[1] - off[0]);
  return 0;
}

static int parse_metadata(const StCtx *c, SafeTensors *st, const JsonValue *v) {
  if (v->kind != JSON_OBJECT) return st_fail(c, NULL, "__metadata__ is a %s, not an object", json_kind_name(v->kind));
  st->meta = xcalloc((size_t)v->n + 1, sizeof *st->meta);
  for (int i = 0; i < v->n; i++) {
    if (v->items[i].kind != JSON_STRING)
      return st_fail(c, NULL, "__metadata__ '%s' is a %s, not a string", v->keys[i],
                     json_kind_name(v->items[i].kind));
    for (int j = 0; j < i; j++)
      if (strcmp(v->keys[i], v->keys[j]) == 0) return st_fail(c, NULL, "__metadata__ key '%s' appears twice", v->keys[i]);
    st->meta[i].key = arena_strdup(&st->names, v->keys[i]);
    st->meta[i].value = arena_strdup(&st->names, v->items[i].str);
  }
  st->n_meta = v->n;
  return 0;
}

typedef struct {
  int64_t begin, end;
  int index;
} StRange;

static int range_cmp(const void *a, const void *b) {
  const StRange *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->index - y->index;
}

static int name_cmp(const void *a, const void *b) {
  const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
  return strcmp(x->name, y->name);
}

// Names unique (sorted copy, neighbours compared).
static int check_names(const StCtx *c, const SafeTensors *st) {
  const StTensor **by = xmalloc((size_t)st->n * sizeof *by + 1);
  for (int i = 0; i < st->n; i++) by[i] = &st->tensors[i];
  qsort(by, (size_t)st->n, sizeof *by, name_cmp);
  int rc = 0;
  for (int i = 1; i < st->n && rc == 0; i++)
    if (strcmp(by[i]->name, by[i - 1]->name) == 0) rc = st_fail(c, by[i]->name, "name appears twice in the header");
  free(by);
  return rc;
}

// The ranges must tile [0, data_len) exactly.
static int check_ranges(const StCtx *c, const SafeTensors *st, StRange *r, size_t data_len) {
  qsort(r, (size_t)st->n, sizeof *r, range_cmp);
  int64_t at = 0;
  for (int i = 0; i < st->n; i++) {
    const char *name = st->tensors[r[i].index].name;
    if (r[i].begin < at)
      return st_fail(c, name, "data_offsets [%lld, %lld] overlap the previous tensor (which ends at %lld)",
                     (long long)r[i].begin, (long long)r[i].end, (long long)at);
    if (r[i].begin > at)
      return st_fail(c, name, "data_offsets [%lld, %lld] leave a gap of %lld bytes after offset %lld",
                     (long long)r[i].begin, (long long)r[i].end, (long long)(r[i].begin - at), (long long)at);
    at = r[i].end;
  }
  if ((uint64_t)at != data_len) {
    if ((uint64_t)at > data_len)
      return st_fail(c, st->tensors[r[st->n - 1].index].name,
                     "data_offsets end at %lld but the file holds only %zu data bytes (truncated?)",
                     (long long)at, data_len);
    return st_fail(c, NULL, "%zu data bytes after the last tensor's end (%lld)", data_len - (size_t)at, (long long)at);
  }
  return 0;
}

static int parse_header(const StCtx *c, SafeTensors *st, const char *text, size_t len, size_t data_len,
                        StRange **ranges) {
  char jerr[160];
  JsonDoc doc;
  if (json_parse(text, len, &doc, jerr, sizeof jerr) != 0) return st_fail(c, NULL, "header is not valid JSON: %s", jerr);
  int rc = 0;
  const JsonValue *root = doc.root;
  if (root->kind != JSON_OBJECT) {
    rc = st_fail(c, NULL, "header is a JSON %s, not an object", json_kind_name(root->kind));
    goto done;
  }
  st->tensors = xcalloc((size_t)root->n + 1, sizeof *st->tensors);
  *ranges = xcalloc((size_t)root->n + 1, sizeof **ranges);
  st->begin = xcalloc((size_t)root->n + 1, sizeof *st->begin);
  for (int i = 0; i < root->n && rc == 0; i++) {
    if (strcmp(root->keys[i], "__metadata__") == 0) {
      if (st->meta) rc = st_fail(c, NULL, "__metadata__ appears twice");
      else rc = parse_metadata(c, st, &root->items[i]);
      continue;
    }
    if (root->key_lens[i] == 0 || strlen(root->keys[i]) != root->key_lens[i]) {
      rc = st_fail(c, NULL, "tensor %d has an empty name or one holding a NUL byte", st->n);
      continue;
    }
    StTensor *t = &st->tensors[st->n];
    t->name = arena_strdup(&st->names, root->keys[i]);
    int64_t off[2] = {0, 0};
    rc = parse_entry(c, t->name, &root->items[i], t, off);
    (*ranges)[st->n] = (StRange){off[0], off[1], st->n};
    st->begin[st->n] = off[0];
    st->n++;
  }
  if (rc == 0) rc = check_names(c, st);
  if (rc == 0) rc = check_ranges(c, st, *ranges, data_len);
done:
  json_free(&doc);
  return rc;
}

// ---------------------------------------------------------------- reading: file

static int read_exact(int fd, void *buf, size_t n, off_t at) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = pread(fd, p, n, at);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r == 0 ? 1 : -1;  // 1: end of file
    p += r;
    n -= (size_t)r;
    at += r;
  }
  return 0;
}

static int st_load(const StCtx *c, SafeTensors *st, int fd) {
  struct stat sb;
  if (fstat(fd, &sb) != 0) return st_fail(c, NULL, "fstat: %s", strerror(errno));
  if (!S_ISREG(sb.st_mode)) return st_fail(c, NULL, "not a regular file");
  uint64_t size = (uint64_t)sb.st_size;
  unsigned char len8[8];
  if (size < 8) return st_fail(c, NULL, "file is %llu bytes, too short for the 8-byte header length", (unsigned long long)size);
  if (read_exact(fd, len8, 8, 0) != 0) return st_fail(c, NULL, "read: %s", strerror(errno));
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
  if (hlen > size - 8)
    return st_fail(c, NULL, "header length %llu exceeds the %llu bytes after it (truncated file or not safetensors)",
                   (unsigned long long)hlen, (unsigned long long)(size - 8));
  if (hlen > ST_MAX_HEADER) return st_fail(c, NULL, "header length %llu exceeds the limit of %d", (unsigned long long)hlen, ST_MAX_HEADER);
  if (hlen < 2) return st_fail(c, NULL, "header length %llu is too short for a JSON object", (unsigned long long)hlen);
  char *hdr = xmalloc((size_t)hlen);
  int rc = read_exact(fd, hdr, (size_t)hlen, 8);
  if (rc != 0) rc = st_fail(c, NULL, "reading the header: %s", rc > 0 ? "unexpected end of file" : strerror(errno));
  else if (hdr[0] != '{') rc = st_fail(c, NULL, "header does not start with '{' (not a safetensors file?)");
  StRange *ranges = NULL;
  st->data_len = (size_t)(size - 8 - hlen);
  if (rc == 0) rc = parse_header(c, st, hdr, (size_t)hlen, st->data_len, &ranges);
  free(hdr);
  free(ranges);
  if (rc != 0) return -1;
  if (posix_memalign(&st->data, 64, st->data_len ? st->data_len : 64) != 0)
    return st_fail(c, NULL, "out of memory for %zu data bytes", st->data_len);
  rc = read_exact(fd, st->data, st->data_len, (off_t)(8 + hlen));
  if (rc != 0) return st_fail(c, NULL, "reading the data: %s", rc > 0 ? "file shrank while reading" : strerror(errno));
  return 0;
}

// Points every tensor into the data; those whose offset is not a multiple of
// their element size (files from other writers) are copied to aligned memory.
static void st_align(SafeTensors *st) {
  size_t extra = 0;
  for (int i = 0; i < st->n; i++)
    if (st->begin[i] % (int64_t)st_dtype_size(st->tensors[i].dtype)) extra += (st->tensors[i].nbytes + 63) & ~(size_t)63;
  if (extra && posix_memalign(&st->moved, 64, extra) != 0) nao_internal("out of memory for %zu bytes", extra);
  char *at = st->moved;
  for (int i = 0; i < st->n; i++) {
    StTensor *t = &st->tensors[i];
    t->data = (const char *)st->data + st->begin[i];
    if (st->begin[i] % (int64_t)st_dtype_size(t->dtype)) {
      memcpy(at, t->data, t->nbytes);
      t->data = at;
      at += (t->nbytes + 63) & ~(size_t)63;
    }
  }
}

int st_open(const char *path, SafeTensors **out, char *err, size_t errlen) {
  StCtx c = {path, err, errlen};
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return st_fail(&c, NULL, "cannot open: %s", strerror(errno));
  SafeTensors *st = xcalloc(1, sizeof *st);
  st->path = xstrdup(path);
  int rc = st_load(&c, st, fd);
  close(fd);
  if (rc != 0) {
    st_close(st);
    return -1;
  }
  st_align(st);
  *out = st;
  return 0;
}

void st_close(SafeTensors *st) {
  if (!st) return;
  free(st->path);
  arena_free(&st->names);
  free(st->tensors);
  free(st->meta);
  free(st->begin);
  free(st->data);
  free(st->moved);
  free(st);
}

const char *st_path(const SafeTensors *st) { return st->path; }
int st_count(const SafeTensors *st) { return st->n; }
const StTensor *st_at(const SafeTensors *st, int i) { return i >= 0 && i < st->n ? &st->tensors[i] : NULL; }
int st_meta_count(const SafeTensors *st) { return st->n_meta; }
const StMeta *st_meta_at(const SafeTensors *st, int i) { return i >= 0 && i < st->n_meta ? &st->meta[i] : NULL; }

const StTensor *st_find(const SafeTensors *st, const char *name) {
  for (int i = 0; i < st->n; i++)
    if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
  return NULL;
}

const char *st_meta_get(const SafeTensors *st, const char *key) {
  for (int i = 0; i < st->n_meta; i++)
    if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
  return NULL;
}

const StTensor *st_expect(const SafeTensors *st, const char *name, StDtype dtype, int ndim,
                          const int64_t *shape, char *err, size_t errlen) {
  StCtx c = {st->path, err, errlen};
  const StTensor *t = st_find(st, name);
  if (!t) {
    st_fail(&c, name, "missing");
    return NULL;
  }
  if (t->dtype != dtype) {
    st_fail(&c, name, "dtype is %s, expected %s", st_dtype_name(t->dtype), st_dtype_name(dtype));
    return NULL;
  }
  int same = ndim < 0 || (ndim == t->ndim && memcmp(shape, t->shape, (size_t)ndim * sizeof *shape) == 0);
  if (!same) {
    char a[160], b[160];
    st_fail(&c, name, "shape is %s, expected %s", st_shape_str(t->ndim, t->shape, a, sizeof a),
            st_shape_str(ndim, shape, b, sizeof b));
    return NULL;
  }
  return t;
}

// ---------------------------------------------------------------- writing

static int write_check(const StTensor *t, int n, const StMeta *meta, int n_meta, char *err, size_t errlen) {
  for (int i = 0; i < n; i++) {
    const char *name = t[i].name ? t[i].name : "";
    if (!*name || strcmp(name, "__metadata__") == 0)
      return snprintf(err, errlen, "tensor %d: invalid name '%s'", i, name), -1;
    if ((unsigned)t[i].dtype >= ST_DTYPE_COUNT || t[i].ndim < 0 || t[i].ndim > ST_MAX_DIMS)
      return snprintf(err, errlen, "tensor '%s': invalid dtype or rank", name), -1;
    int64_t numel = st_numel(t[i].ndim, t[i].shape);
    size_t es = st_dtype_size(t[i].dtype);
    if (numel < 0 || (uint64_t)numel > SIZE_MAX / es || (size_t)numel * es != t[i].nbytes)
      return snprintf(err, errlen, "tensor '%s': %zu bytes do not match its dtype and shape", name, t[i].nbytes), -1;
    if (t[i].nbytes && !t[i].data) return snprintf(err, errlen, "tensor '%s': no data", name), -1;
    for (int j = 0; j < i; j++)
      if (strcmp(t[j].name, name) == 0) return snprintf(err, errlen, "tensor '%s' given twice", name), -1;
  }
  for (int i = 0; i < n_meta; i++)
    for (int j = 0; j < i; j++)
      if (strcmp(meta[i].key, meta[j].key) == 0)
        return snprintf(err, errlen, "metadata key '%s' given twice", meta[i].key), -1;
  return 0;
}

// Layout order: decreasing element size, stable, so every tensor is aligned.
static void layout_order(const StTensor *t, int n, int *order) {
  int k = 0;
  for (size_t es = 8; es >= 1; es /= 2)
    for (int i = 0; i < n; i++)
      if (st_dtype_size(t[i].dtype) == es) order[k++] = i;
}

static void header_json(StrBuf *sb, const StTensor *t, int n, const int *order, const StMeta *meta, int n_meta) {
  JsonWriter w;
  jw_init(&w, sb);
  jw_object_begin(&w);
  if (n_meta) {
    jw_key(&w, "__metadata__");
    jw_object_begin(&w);
    for (int i = 0; i < n_meta; i++) {
      jw_key(&w, meta[i].key);
      jw_string(&w, meta[i].value);
    }
    jw_object_end(&w);
  }
  int64_t at = 0;
  for (int k = 0; k < n; k++) {
    const StTensor *x = &t[order[k]];
    jw_key(&w, x->name);
    jw_object_begin(&w);
    jw_key(&w, "dtype");
    jw_string(&w, st_dtype_name(x->dtype));
    jw_key(&w, "shape");
    jw_array_begin(&w);
    for (int d = 0; d < x->ndim; d++) jw_int(&w, x->shape[d]);
    jw_array_end(&w);
    jw_key(&w, "data_offsets");
    jw_array_begin(&w);
    jw_int(&w, at);
    jw_int(&w, at + (int64_t)x->nbytes);
    jw_array_end(&w);
    jw_object_end(&w);
    at += (int64_t)x->nbytes;
  }
  jw_object_end(&w);
  while ((8 + sb->len) % 8) sb_append(sb, " ");
}

// The 8-byte length and the padded header, for the tensors in layout order.
static char *header_bytes(const StTensor *t, int n, const StMeta *meta, int n_meta, int **order, size_t *len) {
  *order = xmalloc((size_t)n * sizeof **order + 1);
  layout_order(t, n, *order);
  StrBuf hdr = {0};
  header_json(&hdr, t, n, *order, meta, n_meta);
  char *buf = xmalloc(8 + hdr.len);
  for (int i = 0; i < 8; i++) buf[i] = (char)((uint64_t)hdr.len >> (8 * i));
  memcpy(buf + 8, hdr.data, hdr.len);
  *len = 8 + hdr.len;
  sb_free(&hdr);
  return buf;
}

int st_serialize(const StTensor *t, int n, const StMeta *meta, int n_meta, char **out, size_t *len,
                 char *err, size_t errlen) {
  if (write_check(t, n, meta, n_meta, err, errlen) != 0) return -1;
  int *order;
  size_t hlen, total;
  char *hdr = header_bytes(t, n, meta, n_meta, &order, &hlen);
  total = hlen;
  for (int k = 0; k < n; k++) total += t[k].nbytes;
  char *buf = xmalloc(total);
  memcpy(buf, hdr, hlen);
  size_t at = hlen;
  for (int k = 0; k < n; k++) {
    const StTensor *x = &t[order[k]];
    if (x->nbytes) memcpy(buf + at, x->data, x->nbytes);
    at += x->nbytes;
  }
  free(hdr);
  free(order);
  *out = buf;
  *len = total;
  return 0;
}

// Streams header and tensors into the temporary file: no second copy in memory.
int st_write(const char *path, const StTensor *t, int n, const StMeta *meta, int n_meta, char *err, size_t errlen) {
  if (write_check(t, n, meta, n_meta, err, errlen) != 0) {
    char what[256];
    snprintf(what, sizeof what, "%s", err);
    snprintf(err, errlen, "%s: %s", path, what);
    return -1;
  }
  int *order;
  size_t hlen;
  char *hdr = header_bytes(t, n, meta, n_meta, &order, &hlen);
  AtomicFile af;
  int rc = atomic_open(&af, path, err, errlen);
  if (rc == 0) rc = atomic_write(&af, hdr, hlen, err, errlen);
  for (int k = 0; k < n && rc == 0; k++) rc = atomic_write(&af, t[order[k]].data, t[order[k]].nbytes, err, errlen);
  if (rc == 0) rc = atomic_commit(&af, err, errlen);
  else if (af.fd >= 0 || af.tmp) atomic_abort(&af);
  free(hdr);
  free(order);
  return rc;
}
