// tests/unit/test_safetensors.c — safetensors round trips, every kind of
// corrupt file refused with the path, the tensor and what differs, and the
// JSON reader and writer it rests on.
//
// Corrupt files are built by hand (8-byte length + header text + data), so
// each test states exactly which rule it breaks.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include "runtime/json.h"
#include "runtime/rng.h"
#include "runtime/safetensors.h"
#include "tests/unit/data_check.h"

static char *tmp;

// Writes 8-byte length + header + ndata bytes of data (0x11 each).
static const char *raw_file(const char *name, const char *header, size_t ndata) {
  static char path[4096];
  check_path(path, tmp, name);
  size_t hl = strlen(header);
  unsigned char *buf = calloc(1, 8 + hl + ndata + 1);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  memcpy(buf + 8, header, hl);
  memset(buf + 8 + hl, 0x11, ndata);
  check_write_file(path, buf, 8 + hl + ndata);
  free(buf);
  return path;
}

static void expect_refused(const char *header, size_t ndata, const char *needle1, const char *needle2) {
  const char *path = raw_file("bad.safetensors", header, ndata);
  SafeTensors *st = NULL;
  char err[512] = "";
  int rc = st_open(path, &st, err, sizeof err);
  CHECK_ERR(rc, err, path, needle1, needle2);
  CHECK(st == NULL, "no handle on failure");
  st_close(st);
}

// ---------------------------------------------------------------- round trip

static void test_roundtrip(void) {
  float f[6] = {1.5f, -2, 3, 4, 5, 6.25f};
  double d[3] = {1e-300, -0.0, 3.5};
  int64_t i64[2] = {INT64_MIN, INT64_MAX};
  int32_t i32[1] = {-7};
  uint8_t u8[5] = {0, 1, 2, 254, 255};
  uint16_t h[3] = {0x3c00, 0x4000, 0xbc00};
  StTensor t[] = {
      {"u8", ST_U8, 1, {5}, u8, sizeof u8},
      {"weight", ST_F32, 2, {2, 3}, f, sizeof f},
      {"scalar", ST_I32, 0, {0}, i32, sizeof i32},
      {"half", ST_F16, 1, {3}, h, sizeof h},
      {"empty", ST_F32, 2, {0, 4}, NULL, 0},
      {"d", ST_F64, 1, {3}, d, sizeof d},
      {"step \"quoted\" \xc3\xa9", ST_I64, 1, {2}, i64, sizeof i64},
  };
  int n = (int)(sizeof t / sizeof t[0]);
  StMeta meta[] = {{"format", "pt"}, {"epoch", "3"}, {"note", "line\nbreak \"q\""}};
  char path[4096], err[512] = "";
  check_path(path, tmp, "good.safetensors");
  CHECK(st_write(path, t, n, meta, 3, err, sizeof err) == 0, "write: %s", err);
  SafeTensors *st = NULL;
  CHECK(st_open(path, &st, err, sizeof err) == 0, "open: %s", err);
  if (!st) return;
  CHECK(st_count(st) == n, "count %d", st_count(st));
  for (int i = 0; i < n; i++) {
    const StTensor *r = st_find(st, t[i].name);
    CHECK(r != NULL, "tensor %s missing", t[i].name);
    if (!r) continue;
    CHECK(r->dtype == t[i].dtype && r->ndim == t[i].ndim && r->nbytes == t[i].nbytes, "%s header", t[i].name);
    CHECK(memcmp(r->shape, t[i].shape, (size_t)t[i].ndim * 8) == 0, "%s shape", t[i].name);
    CHECK(!r->nbytes || memcmp(r->data, t[i].data, r->nbytes) == 0, "%s data", t[i].name);
    CHECK((uintptr_t)r->data % st_dtype_size(r->dtype) == 0, "%s aligned", t[i].name);
  }
  CHECK(st_meta_count(st) == 3, "meta count");
  CHECK(st_meta_get(st, "note") && !strcmp(st_meta_get(st, "note"), "line\nbreak \"q\""), "meta value");
  CHECK(st_meta_get(st, "absent") == NULL, "absent meta");
  // st_expect: present, wrong dtype, wrong shape, missing.
  int64_t shape23[2] = {2, 3}, shape32[2] = {3, 2};
  CHECK(st_expect(st, "weight", ST_F32, 2, shape23, err, sizeof err) != NULL, "expect ok: %s", err);
  CHECK(st_expect(st, "weight", ST_F64, 2, shape23, err, sizeof err) == NULL &&
            check_has(err, path, "'weight'", "dtype is F32, expected F64"), "%s", err);
  CHECK(st_expect(st, "weight", ST_F32, 2, shape32, err, sizeof err) == NULL &&
            check_has(err, "'weight'", "shape is [2, 3], expected [3, 2]", NULL), "%s", err);
  CHECK(st_expect(st, "nope", ST_F32, -1, NULL, err, sizeof err) == NULL && check_has(err, "'nope'", "missing", NULL),
        "%s", err);
  st_close(st);

  // The file's header is padded so the data starts 8-aligned, and the
  // in-memory serialisation is the same bytes.
  char *buf;
  size_t len;
  CHECK(st_serialize(t, n, meta, 3, &buf, &len, err, sizeof err) == 0, "serialize");
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = hl << 8 | (unsigned char)buf[i];
  CHECK((8 + hl) % 8 == 0, "header padded to 8: %llu", (unsigned long long)hl);
  size_t flen;
  const char *ferr;
  char *file = nao_read_file(path, &flen, &ferr);
  CHECK(file && flen == len && memcmp(file, buf, len) == 0, "file == serialisation");
  free(file);
  free(buf);
}

static void test_overwrite_leaves_no_temp(void) {
  char path[4096], err[512];
  check_path(path, tmp, "over.safetensors");
  for (int v = 0; v < 3; v++) {
    float x[4] = {(float)v, (float)v, (float)v, (float)v};
    StTensor t = {"x", ST_F32, 1, {4}, x, sizeof x};
    CHECK(st_write(path, &t, 1, NULL, 0, err, sizeof err) == 0, "%s", err);
  }
  SafeTensors *st;
  CHECK(st_open(path, &st, err, sizeof err) == 0, "%s", err);
  const StTensor *x = st_find(st, "x");
  CHECK(x && ((const float *)x->data)[3] == 2.0f, "last write wins");
  st_close(st);
  DIR *d = opendir(tmp);
  struct dirent *e;
  int temps = 0;
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) temps++;
  closedir(d);
  CHECK(temps == 0, "%d temporary files left", temps);
  // Writing into a missing directory fails with the path.
  char bad[4096];
  check_path(bad, tmp, "no/such/dir/x.safetensors");
  float y = 1;
  StTensor t = {"y", ST_F32, 0, {0}, &y, 4};
  CHECK_ERR(st_write(bad, &t, 1, NULL, 0, err, sizeof err), err, "no/such/dir", "temporary", NULL);
}

static void test_writer_refuses(void) {
  char path[4096], err[512];
  check_path(path, tmp, "w.safetensors");
  float x[4] = {0};
  StTensor dup[2] = {{"a", ST_F32, 1, {4}, x, 16}, {"a", ST_F32, 1, {4}, x, 16}};
  CHECK_ERR(st_write(path, dup, 2, NULL, 0, err, sizeof err), err, "'a'", "twice", NULL);
  StTensor size = {"b", ST_F32, 1, {5}, x, 16};
  CHECK_ERR(st_write(path, &size, 1, NULL, 0, err, sizeof err), err, "'b'", "do not match", NULL);
  StTensor meta = {"__metadata__", ST_F32, 1, {4}, x, 16};
  CHECK_ERR(st_write(path, &meta, 1, NULL, 0, err, sizeof err), err, "invalid name", NULL, NULL);
  FILE *f = fopen(path, "rb");
  CHECK(f == NULL, "nothing written on refusal");
  if (f) fclose(f);
}

// ---------------------------------------------------------------- corrupt files

static void test_corrupt(void) {
  const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  // Sanity: the base case opens.
  SafeTensors *st;
  char err[512];
  CHECK(st_open(raw_file("base.safetensors", ok, 8), &st, err, sizeof err) == 0, "base: %s", err);
  st_close(st);

  char path[4096];
  check_write_file(check_path(path, tmp, "short"), "abc", 3);
  CHECK_ERR(st_open(path, &st, err, sizeof err), err, path, "too short", NULL);
  CHECK_ERR(st_open(check_path(path, tmp, "absent"), &st, err, sizeof err), err, path, "cannot open", NULL);
  // Header length larger than the file.
  unsigned char big[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
  check_write_file(check_path(path, tmp, "biglen"), big, 10);
  CHECK_ERR(st_open(path, &st, err, sizeof err), err, path, "header length 4294967295 exceeds", NULL);

  expect_refused("[1,2,3]", 0, "does not start with '{'", NULL);
  expect_refused("{\"a\":", 0, "not valid JSON", NULL);
  expect_refused("{\"a\":1} x", 0, "text after the JSON value", NULL);
  expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
                 "tensor 'a'", "appears twice");
  expect_refused("{\"w\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'w'", "unknown dtype 'F33'");
  expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "tensor 'w'", "shape entry 0");
  expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, "tensor 'w'", "shape entry 0");
  expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "tensor 'w'", "'shape' must be");
  expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "tensor 'w'", "two integers");
  expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "tensor 'w'", "end before");
  expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12, "tensor 'w'",
                 "hold 12 bytes but F32 [2, 2] needs 16");
  expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8,
                 "tensor 'w'", "too large");
  expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", 8, "tensor 'w'",
                 "unknown field 'extra'");
  expect_refused("{\"w\":[1]}", 0, "tensor 'w'", "not an object");
  expect_refused("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'w'", "'dtype' missing");
  // Offsets: overlap, gap, past the end (truncated data), trailing bytes.
  expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "tensor 'b'", "overlap");
  expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, "tensor 'b'", "gap of 4 bytes");
  expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 10, "tensor 'a'", "truncated");
  expect_refused(ok, 12, "4 data bytes after the last tensor", NULL);
  expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"__metadata__\":{\"k\":1}}", 8,
                 "__metadata__ 'k'", "not a string");
  expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"__metadata__\":[]}", 8,
                 "__metadata__", "not an object");
  expect_refused("{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "empty name", NULL);
  expect_refused("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "NUL", NULL);
  // A file cut in the middle of its header.
  const char *full = raw_file("cut.safetensors", ok, 8);
  size_t flen;
  const char *ferr;
  char *bytes = nao_read_file(full, &flen, &ferr);
  check_write_file(full, bytes, 20);
  free(bytes);
  CHECK_ERR(st_open(full, &st, err, sizeof err), err, full, "exceeds", NULL);
}

// Other writers may place a tensor at an offset that is not a multiple of
// its element size: the reader hands out an aligned copy.
static void test_misaligned(void) {
  const char *hdr = "{\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                    "\"f\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[3,19]}}";
  char path[4096], err[512];
  check_path(path, tmp, "misaligned.safetensors");
  size_t hl = strlen(hdr);
  unsigned char buf[512] = {0};
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  memcpy(buf + 8, hdr, hl);
  double f[2] = {1.25, -3.5};
  memcpy(buf + 8 + hl, "\1\2\3", 3);
  memcpy(buf + 8 + hl + 3, f, sizeof f);
  check_write_file(path, buf, 8 + hl + 19);
  SafeTensors *st;
  CHECK(st_open(path, &st, err, sizeof err) == 0, "%s", err);
  if (!st) return;
  const StTensor *t = st_find(st, "f");
  CHECK(t && (uintptr_t)t->data % 8 == 0, "misaligned tensor handed out aligned");
  CHECK(t && ((const double *)t->data)[0] == 1.25 && ((const double *)t->data)[1] == -3.5, "its values");
  t = st_find(st, "b");
  CHECK(t && !memcmp(t->data, "\1\2\3", 3), "the bytes before it");
  st_close(st);
}

// A valid file with random bytes changed or cut: it opens (and then every
// tensor is consistent) or is refused with the path; nothing crashes.
static void test_mutations(void) {
  float x[6] = {1, 2, 3, 4, 5, 6};
  int64_t y[2] = {7, 8};
  StTensor t[2] = {{"layer.weight", ST_F32, 2, {2, 3}, x, sizeof x}, {"step", ST_I64, 1, {2}, y, sizeof y}};
  StMeta m = {"k", "v"};
  char *good;
  size_t len;
  char err[512], path[4096];
  st_serialize(t, 2, &m, 1, &good, &len, err, sizeof err);
  check_path(path, tmp, "mut.safetensors");
  Rng r;
  rng_seed(&r, 77);
  char *buf = malloc(len);
  int opened = 0, refused = 0, bad = 0;
  for (int trial = 0; trial < 400; trial++) {
    memcpy(buf, good, len);
    size_t n = len;
    if (trial % 4 == 3) n = rng_below(&r, len);
    else
      for (int k = 0; k < 1 + trial % 3; k++) buf[rng_below(&r, len)] = (char)rng_u64(&r);
    check_write_file(path, buf, n);
    SafeTensors *st;
    if (st_open(path, &st, err, sizeof err) == 0) {
      opened++;
      size_t total = 0;
      for (int i = 0; i < st_count(st); i++) total += st_at(st, i)->nbytes;
      bad += total > n;
      st_close(st);
    } else {
      refused++;
      bad += strstr(err, path) == NULL;
    }
  }
  CHECK(bad == 0 && refused > 0, "mutations: %d opened, %d refused, %d inconsistent", opened, refused, bad);
  free(buf);
  free(good);
}

// ---------------------------------------------------------------- JSON

static void json_ok(const char *text, JsonKind kind) {
  JsonDoc doc;
  char err[256] = "";
  int rc = json_parse(text, strlen(text), &doc, err, sizeof err);
  CHECK(rc == 0 && doc.root->kind == kind, "'%s': %s", text, err);
  if (rc == 0) json_free(&doc);
}

static void json_bad(const char *text, const char *needle) {
  JsonDoc doc;
  char err[256] = "";
  CHECK_ERR(json_parse(text, strlen(text), &doc, err, sizeof err), err, needle, NULL, NULL);
}

static void test_json(void) {
  json_ok(" {\"a\": [1, -2.5e3, true, false, null, \"x\"], \"b\": {}} ", JSON_OBJECT);
  json_ok("[]", JSON_ARRAY);
  json_ok("-0", JSON_NUMBER);
  json_bad("", "unexpected end");
  json_bad("[1,]", "unexpected character");
  json_bad("{\"a\":1,}", "expected a string key");
  json_bad("[01]", "leading zero");
  json_bad("[1.]", "no digits after");
  json_bad("[1e]", "no digits in exponent");
  json_bad("\"abc", "unterminated");
  json_bad("\"a\tb\"", "control character");
  json_bad("\"\\x\"", "invalid escape");
  json_bad("\"\\ud800\"", "unpaired high surrogate");
  json_bad("\"\\udc00\"", "unpaired low surrogate");
  json_bad("\"\xc3\"", "invalid UTF-8");
  json_bad("\"\xc0\xaf\"", "invalid UTF-8");  // overlong '/'
  json_bad("nul", "invalid literal");
  json_bad("{\"a\" 1}", "expected ':'");
  json_bad("[1] [2]", "text after");
  char deep[200];
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  JsonDoc doc;
  char err[256];
  CHECK_ERR(json_parse(deep, 200, &doc, err, sizeof err), err, "nesting too deep", NULL, NULL);

  // Values decode exactly: escapes, surrogate pairs, exact int64 limits.
  const char *t = "{\"s\":\"a\\n\\u00e9\\ud83d\\ude00\\/\",\"big\":9223372036854775807,"
                  "\"min\":-9223372036854775808,\"over\":9223372036854775808,\"f\":0.1}";
  CHECK(json_parse(t, strlen(t), &doc, err, sizeof err) == 0, "%s", err);
  const JsonValue *s = json_get(doc.root, "s");
  CHECK(s && s->len == 9 && memcmp(s->str, "a\n\xc3\xa9\xf0\x9f\x98\x80/", 9) == 0, "string decoding");
  CHECK(json_get(doc.root, "big")->is_int && json_get(doc.root, "big")->integer == INT64_MAX, "int64 max");
  CHECK(json_get(doc.root, "min")->is_int && json_get(doc.root, "min")->integer == INT64_MIN, "int64 min");
  CHECK(!json_get(doc.root, "over")->is_int, "beyond int64 is not an int");
  CHECK(json_get(doc.root, "f")->number == 0.1, "double");
  json_free(&doc);

  // Writer: what it writes parses back to the same values.
  StrBuf sb = {0};
  JsonWriter w;
  jw_init(&w, &sb);
  double vals[] = {0.1, 1.0 / 3.0, -1e-310, 6.02214076e23, 123456789.0};
  jw_object_begin(&w);
  jw_key(&w, "step");
  jw_int(&w, -42);
  jw_key(&w, "name\"\n");
  jw_string(&w, "tab\there \x01");
  jw_key(&w, "v");
  jw_array_begin(&w);
  for (int i = 0; i < 5; i++) jw_double(&w, vals[i]);
  jw_double(&w, NAN);
  jw_bool(&w, 1);
  jw_null(&w);
  jw_array_end(&w);
  jw_key(&w, "o");
  jw_object_begin(&w);
  jw_object_end(&w);
  jw_object_end(&w);
  CHECK(json_parse(sb.data, sb.len, &doc, err, sizeof err) == 0, "writer output '%s': %s", sb.data, err);
  if (doc.root) {
    const JsonValue *v = json_get(doc.root, "v");
    CHECK(v && v->n == 8, "array length");
    for (int i = 0; v && i < 5; i++) CHECK(v->items[i].number == vals[i], "double %d round trip: %s", i, sb.data);
    CHECK(v && v->items[5].kind == JSON_NULL, "NaN written as null");
    CHECK(json_get(doc.root, "name\"\n") != NULL, "escaped key");
    CHECK(!strcmp(json_get(doc.root, "name\"\n")->str, "tab\there \x01"), "escaped string");
    CHECK(json_get(doc.root, "step")->integer == -42, "int");
    json_free(&doc);
  }
  sb_free(&sb);
}

int main(void) {
  tmp = check_tmpdir("st");
  test_roundtrip();
  test_overwrite_leaves_no_temp();
  test_writer_refuses();
  test_corrupt();
  test_misaligned();
  test_mutations();
  test_json();
  check_rmtree(tmp);
  free(tmp);
  return check_report("test_safetensors");
}
