// search/st_lite.c — minimal safetensors reader/writer (st_lite.h).
//
// The reader parses only the JSON the format allows in its header: one object
// whose values are tensor descriptions or the metadata object of strings. It
// checks every offset against the file size and every byte count against the
// shape, so a truncated or corrupt file is an error, never a read out of bounds.
#include "search/st_lite.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "search/sfile.h"

static const char *const dtype_names[] = {"F32", "F64", "I32", "I64"};

size_t stl_dtype_size(StlDtype d) { return d == STL_F32 || d == STL_I32 ? 4 : 8; }
const char *stl_dtype_name(StlDtype d) { return dtype_names[d]; }

static StlTensor *push(StlFile *f) {
  if (f->n == f->cap) {
    f->cap = f->cap ? 2 * f->cap : 16;
    f->t = xrealloc(f->t, (size_t)f->cap * sizeof *f->t);
  }
  StlTensor *t = &f->t[f->n++];
  memset(t, 0, sizeof *t);
  return t;
}

void stl_add(StlFile *f, const char *name, StlDtype dtype, int ndim, const int64_t *shape, const void *data) {
  NAO_ASSERT(ndim >= 0 && ndim <= STL_MAX_DIMS && strlen(name) < STL_NAME_MAX);
  StlTensor *t = push(f);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->dtype = dtype, t->ndim = ndim, t->data = data;
  size_t count = 1;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i], count *= (size_t)shape[i];
  t->nbytes = count * stl_dtype_size(dtype);
}

void stl_add_meta(StlFile *f, const char *key, const char *value) {
  f->meta = xrealloc(f->meta, (size_t)(f->n_meta + 1) * 2 * sizeof(char *));
  f->meta[2 * f->n_meta] = xstrdup(key);
  f->meta[2 * f->n_meta + 1] = xstrdup(value);
  f->n_meta++;
}

static void json_string(StrBuf *sb, const char *s) {
  sb_append(sb, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') sb_printf(sb, "\\%c", c);
    else if (c < 0x20) sb_printf(sb, "\\u%04x", c);
    else sb_appendn(sb, s, 1);
  }
  sb_append(sb, "\"");
}

int stl_save(const StlFile *f, const char *path, char *err, size_t errlen) {
  StrBuf h = {0};
  size_t off = 0;
  sb_append(&h, "{");
  if (f->n_meta) {
    sb_append(&h, "\"__metadata__\":{");
    for (int i = 0; i < f->n_meta; i++) {
      if (i) sb_append(&h, ",");
      json_string(&h, f->meta[2 * i]);
      sb_append(&h, ":");
      json_string(&h, f->meta[2 * i + 1]);
    }
    sb_append(&h, "}");
  }
  for (int i = 0; i < f->n; i++) {
    const StlTensor *t = &f->t[i];
    sb_append(&h, i || f->n_meta ? "," : "");
    json_string(&h, t->name);
    sb_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", stl_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) sb_printf(&h, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    sb_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
    off += t->nbytes;
  }
  sb_append(&h, "}");
  while (h.len % 8) sb_append(&h, " ");
  size_t total = 8 + h.len + off;
  unsigned char *buf = xmalloc(total);
  for (int b = 0; b < 8; b++) buf[b] = (unsigned char)((uint64_t)h.len >> (8 * b));
  memcpy(buf + 8, h.data, h.len);
  size_t pos = 8 + h.len;
  for (int i = 0; i < f->n; i++) {
    if (f->t[i].nbytes) memcpy(buf + pos, f->t[i].data, f->t[i].nbytes);
    pos += f->t[i].nbytes;
  }
  int rc = sf_write_atomic(path, buf, total, err, errlen);
  free(buf);
  sb_free(&h);
  return rc;
}

// ---------------------------------------------------------------- reading
typedef struct {
  const char *p, *end;
} Json;

static void ws(Json *j) {
  while (j->p < j->end && isspace((unsigned char)*j->p)) j->p++;
}

static int lit(Json *j, char c) {
  ws(j);
  if (j->p < j->end && *j->p == c) return j->p++, 1;
  return 0;
}

// A string into out (escapes decoded; \u beyond ASCII becomes '?').
static int jstring(Json *j, StrBuf *out) {
  if (!lit(j, '"')) return -1;
  while (j->p < j->end && *j->p != '"') {
    char c = *j->p++;
    if (c == '\\') {
      if (j->p >= j->end) return -1;
      char e = *j->p++;
      const char *map = strchr("\"\\/bfnrt", e);
      if (e == 'u') {
        if (j->end - j->p < 4) return -1;
        unsigned v = 0;
        for (int k = 0; k < 4; k++) {
          char h = *j->p++;
          if (!isxdigit((unsigned char)h)) return -1;
          v = v * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
        }
        c = v < 0x80 ? (char)v : '?';
      } else if (map && e) {
        c = "\"\\/\b\f\n\r\t"[map - "\"\\/bfnrt"];
      } else {
        return -1;
      }
    }
    sb_appendn(out, &c, 1);
  }
  if (!out->data) sb_append(out, "");
  return lit(j, '"') ? 0 : -1;
}

static int jint(Json *j, int64_t *v) {
  ws(j);
  const char *s = j->p;
  int64_t x = 0;
  while (j->p < j->end && isdigit((unsigned char)*j->p)) {
    if (x > (INT64_MAX - 9) / 10) return -1;
    x = x * 10 + (*j->p++ - '0');
  }
  *v = x;
  return j->p > s ? 0 : -1;
}

static int jint_array(Json *j, int64_t *v, int max, int *n) {
  *n = 0;
  if (!lit(j, '[')) return -1;
  if (lit(j, ']')) return 0;
  do {
    if (*n == max || jint(j, &v[*n]) != 0) return -1;
    (*n)++;
  } while (lit(j, ','));
  return lit(j, ']') ? 0 : -1;
}

static int parse_meta(Json *j, StlFile *f) {
  if (!lit(j, '{')) return -1;
  if (lit(j, '}')) return 0;
  do {
    StrBuf k = {0}, v = {0};
    int rc = jstring(j, &k) || !lit(j, ':') || jstring(j, &v) ? -1 : 0;
    if (rc == 0) stl_add_meta(f, k.data, v.data);
    sb_free(&k), sb_free(&v);
    if (rc) return -1;
  } while (lit(j, ','));
  return lit(j, '}') ? 0 : -1;
}

// {"dtype": "F32", "shape": [..], "data_offsets": [b, e]} in any order.
static int parse_tensor(Json *j, StlTensor *t, int64_t off[2]) {
  int have = 0, n;
  if (!lit(j, '{')) return -1;
  do {
    StrBuf k = {0};
    if (jstring(j, &k) || !lit(j, ':')) return sb_free(&k), -1;
    int rc = 0;
    if (!strcmp(k.data, "dtype")) {
      StrBuf v = {0};
      rc = jstring(j, &v);
      int d = -1;
      for (int i = 0; !rc && i < 4; i++)
        if (!strcmp(v.data, dtype_names[i])) d = i;
      sb_free(&v);
      if (d < 0) rc = -1;
      else t->dtype = (StlDtype)d, have |= 1;
    } else if (!strcmp(k.data, "shape")) {
      rc = jint_array(j, t->shape, STL_MAX_DIMS, &t->ndim), have |= 2;
    } else if (!strcmp(k.data, "data_offsets")) {
      rc = jint_array(j, off, 2, &n) || n != 2 ? -1 : 0, have |= 4;
    } else {
      rc = -1;
    }
    sb_free(&k);
    if (rc) return -1;
  } while (lit(j, ','));
  return lit(j, '}') && have == 7 ? 0 : -1;
}

static int parse_header(Json *j, StlFile *f, size_t data_len, char *what, size_t wlen) {
  if (!lit(j, '{')) return snprintf(what, wlen, "header is not a JSON object"), -1;
  if (lit(j, '}')) return 0;
  do {
    StrBuf name = {0};
    if (jstring(j, &name) || !lit(j, ':')) return sb_free(&name), snprintf(what, wlen, "malformed header"), -1;
    int rc;
    if (!strcmp(name.data, "__metadata__")) {
      rc = parse_meta(j, f);
      if (rc) snprintf(what, wlen, "malformed __metadata__");
    } else {
      StlTensor *t = push(f);
      int64_t off[2];
      snprintf(t->name, sizeof t->name, "%s", name.data);
      rc = parse_tensor(j, t, off);
      size_t count = 1;
      for (int d = 0; !rc && d < t->ndim; d++) count *= (size_t)t->shape[d];
      if (rc) snprintf(what, wlen, "tensor '%s': malformed description", name.data);
      else if (off[0] > off[1] || (size_t)off[1] > data_len || (size_t)(off[1] - off[0]) != count * stl_dtype_size(t->dtype))
        rc = -1, snprintf(what, wlen, "tensor '%s': data offsets [%lld, %lld] do not fit its shape or the file",
                          name.data, (long long)off[0], (long long)off[1]);
      t->nbytes = (size_t)(off[1] - off[0]);
      t->data = (const void *)(uintptr_t)off[0];  // made a pointer once the buffer is known
    }
    sb_free(&name);
    if (rc) return -1;
  } while (lit(j, ','));
  if (!lit(j, '}')) return snprintf(what, wlen, "malformed header"), -1;
  return 0;
}

int stl_load(StlFile *f, const char *path, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  size_t len;
  const char *why;
  char *raw = nao_read_file(path, &len, &why);
  if (!raw) return snprintf(err, errlen, "%s: cannot read: %s", path, why), -1;
  uint64_t hlen = 0;
  for (int b = 0; len >= 8 && b < 8; b++) hlen |= (uint64_t)(unsigned char)raw[b] << (8 * b);
  if (len < 8 || hlen > len - 8) {
    free(raw);
    return snprintf(err, errlen, "%s: not a safetensors file (header length out of range)", path), -1;
  }
  // Copy the data to an 8-aligned buffer so tensors can be read in place.
  size_t data_len = len - 8 - (size_t)hlen;
  f->buf = xmalloc(data_len + 8);
  memcpy(f->buf, raw + 8 + hlen, data_len);
  Json j = {raw + 8, raw + 8 + hlen};
  char what[256];
  int rc = parse_header(&j, f, data_len, what, sizeof what);
  free(raw);
  if (rc) {
    snprintf(err, errlen, "%s: %s", path, what);
    stl_free(f);
    return -1;
  }
  for (int i = 0; i < f->n; i++) f->t[i].data = f->buf + (uintptr_t)f->t[i].data;
  return 0;
}

const StlTensor *stl_find(const StlFile *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (!strcmp(f->t[i].name, name)) return &f->t[i];
  return NULL;
}

const char *stl_get_meta(const StlFile *f, const char *key) {
  for (int i = 0; i < f->n_meta; i++)
    if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
  return NULL;
}

void stl_free(StlFile *f) {
  for (int i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
  free(f->meta), free(f->t), free(f->buf);
  memset(f, 0, sizeof *f);
}
