// runtime/json.c — strict JSON reader into an arena tree, and a record writer.
//
// The reader is recursive descent over a byte range; it never reads past
// text + len and never recurses deeper than JSON_MAX_DEPTH. Every value lives
// in the document's arena. The writer appends to a StrBuf.
#include "runtime/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *s;
  size_t len, pos;
  Arena *arena;
  int depth;
  char *err;
  size_t errlen;
  int failed;
} JsonParser;

static int jp_fail(JsonParser *p, size_t at, const char *what) {
  if (!p->failed) snprintf(p->err, p->errlen, "byte %zu: %s", at, what);
  p->failed = 1;
  return -1;
}

static void jp_skip_ws(JsonParser *p) {
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static int jp_literal(JsonParser *p, const char *word) {
  size_t n = strlen(word);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
    return jp_fail(p, p->pos, "invalid literal");
  p->pos += n;
  return 0;
}

// ---------------------------------------------------------------- strings

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

static void put_utf8(StrBuf *sb, unsigned cp) {
  char b[4];
  size_t n;
  if (cp < 0x80) { b[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { b[0] = (char)(0xC0 | (cp >> 6)); b[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    b[0] = (char)(0xE0 | (cp >> 12)); b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    b[0] = (char)(0xF0 | (cp >> 18)); b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  sb_appendn(sb, b, n);
}

// Length of the valid UTF-8 sequence at s (at most avail bytes), or 0.
static size_t utf8_len(const unsigned char *s, size_t avail) {
  unsigned c = s[0];
  size_t n;
  unsigned cp, min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; min = 0x80; }
  else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; min = 0x800; }
  else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; min = 0x10000; }
  else return 0;
  if (avail < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// A \u escape at p->pos (after the backslash and 'u'), with a following low
// surrogate when the first is a high one.
static int jp_unicode_escape(JsonParser *p, StrBuf *sb) {
  size_t at = p->pos - 2;
  unsigned hi, lo;
  if (p->len - p->pos < 4 || hex4(p->s + p->pos, &hi) != 0)
    return jp_fail(p, at, "invalid \\u escape");
  p->pos += 4;
  if (hi >= 0xDC00 && hi <= 0xDFFF) return jp_fail(p, at, "unpaired low surrogate in \\u escape");
  if (hi >= 0xD800 && hi <= 0xDBFF) {
    if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
        hex4(p->s + p->pos + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
      return jp_fail(p, at, "unpaired high surrogate in \\u escape");
    p->pos += 6;
    hi = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
  }
  put_utf8(sb, hi);
  return 0;
}

static int jp_escape(JsonParser *p, StrBuf *sb) {
  size_t at = p->pos;
  if (p->pos + 1 >= p->len) return jp_fail(p, at, "unterminated string");
  char c = p->s[p->pos + 1];
  p->pos += 2;
  const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
  const char *hit = c ? strchr(from, c) : NULL;
  if (hit) {
    sb_appendn(sb, to + (hit - from), 1);
    return 0;
  }
  if (c == 'u') return jp_unicode_escape(p, sb);
  return jp_fail(p, at, "invalid escape in string");
}

// A string at p->pos (the opening quote); its bytes go into the arena.
static int jp_string(JsonParser *p, char **out, size_t *out_len) {
  StrBuf sb = {0};
  size_t start = p->pos++;
  for (;;) {
    if (p->pos >= p->len) {
      sb_free(&sb);
      return jp_fail(p, start, "unterminated string");
    }
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c == '"') break;
    if (c < 0x20) {
      sb_free(&sb);
      return jp_fail(p, p->pos, "control character in string");
    }
    if (c == '\\') {
      if (jp_escape(p, &sb) != 0) {
        sb_free(&sb);
        return -1;
      }
      continue;
    }
    size_t n = utf8_len((const unsigned char *)p->s + p->pos, p->len - p->pos);
    if (n == 0) {
      sb_free(&sb);
      return jp_fail(p, p->pos, "invalid UTF-8 in string");
    }
    sb_appendn(&sb, p->s + p->pos, n);
    p->pos += n;
  }
  p->pos++;  // closing quote
  *out_len = sb.len;
  *out = arena_alloc(p->arena, sb.len + 1);
  if (sb.len) memcpy(*out, sb.data, sb.len);
  sb_free(&sb);
  return 0;
}

// ---------------------------------------------------------------- numbers

static size_t digits(const char *s, size_t pos, size_t len) {
  size_t n = 0;
  while (pos + n < len && s[pos + n] >= '0' && s[pos + n] <= '9') n++;
  return n;
}

static int jp_number(JsonParser *p, JsonValue *v) {
  size_t start = p->pos, pos = p->pos;
  int neg = 0, integral = 1;
  if (pos < p->len && p->s[pos] == '-') { neg = 1; pos++; }
  size_t nd = digits(p->s, pos, p->len);
  if (nd == 0) return jp_fail(p, start, "invalid number");
  if (nd > 1 && p->s[pos] == '0') return jp_fail(p, start, "leading zero in number");
  pos += nd;
  if (pos < p->len && p->s[pos] == '.') {
    integral = 0;
    nd = digits(p->s, ++pos, p->len);
    if (nd == 0) return jp_fail(p, start, "invalid number: no digits after '.'");
    pos += nd;
  }
  if (pos < p->len && (p->s[pos] == 'e' || p->s[pos] == 'E')) {
    integral = 0;
    pos++;
    if (pos < p->len && (p->s[pos] == '+' || p->s[pos] == '-')) pos++;
    nd = digits(p->s, pos, p->len);
    if (nd == 0) return jp_fail(p, start, "invalid number: no digits in exponent");
    pos += nd;
  }
  size_t n = pos - start;
  if (n > 400) return jp_fail(p, start, "number literal too long");
  char buf[402];
  memcpy(buf, p->s + start, n);
  buf[n] = 0;
  v->number = strtod(buf, NULL);
  if (integral) {
    uint64_t mag = 0;
    int ok = 1;
    for (size_t i = (size_t)neg; i < n && ok; i++) {
      uint64_t d = (uint64_t)(buf[i] - '0');
      if (mag > (UINT64_MAX - d) / 10) ok = 0;
      else mag = mag * 10 + d;
    }
    if (ok && (neg ? mag <= (uint64_t)INT64_MAX + 1 : mag <= (uint64_t)INT64_MAX)) {
      v->is_int = 1;
      v->integer = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    }
  }
  v->kind = JSON_NUMBER;
  p->pos = pos;
  return 0;
}

// ---------------------------------------------------------------- containers

static int jp_value(JsonParser *p, JsonValue *v);

typedef struct {
  JsonValue *vals;
  char **keys;
  size_t *lens;
  int n, cap;
} Members;

static void members_push(Members *m, const JsonValue *v, char *key, size_t klen) {
  if (m->n == m->cap) {
    m->cap = m->cap ? 2 * m->cap : 8;
    m->vals = xrealloc(m->vals, (size_t)m->cap * sizeof *m->vals);
    m->keys = xrealloc(m->keys, (size_t)m->cap * sizeof *m->keys);
    m->lens = xrealloc(m->lens, (size_t)m->cap * sizeof *m->lens);
  }
  m->vals[m->n] = *v;
  m->keys[m->n] = key;
  m->lens[m->n] = klen;
  m->n++;
}

static void members_finish(JsonParser *p, Members *m, JsonValue *v, int with_keys) {
  v->n = m->n;
  if (m->n) {
    v->items = arena_alloc(p->arena, (size_t)m->n * sizeof *v->items);
    memcpy(v->items, m->vals, (size_t)m->n * sizeof *v->items);
    if (with_keys) {
      v->keys = arena_alloc(p->arena, (size_t)m->n * sizeof *v->keys);
      v->key_lens = arena_alloc(p->arena, (size_t)m->n * sizeof *v->key_lens);
      memcpy(v->keys, m->keys, (size_t)m->n * sizeof *v->keys);
      memcpy(v->key_lens, m->lens, (size_t)m->n * sizeof *v->key_lens);
    }
  }
  free(m->vals);
  free(m->keys);
  free(m->lens);
}

// One member (with its key when an object) at p->pos; 1 at the closing bracket.
static int jp_member(JsonParser *p, Members *m, int object, char close) {
  JsonValue item = {0};
  char *key = NULL;
  size_t klen = 0;
  jp_skip_ws(p);
  if (object) {
    if (p->pos >= p->len || p->s[p->pos] != '"') return jp_fail(p, p->pos, "expected a string key");
    if (jp_string(p, &key, &klen) != 0) return -1;
    jp_skip_ws(p);
    if (p->pos >= p->len || p->s[p->pos] != ':') return jp_fail(p, p->pos, "expected ':' after key");
    p->pos++;
  }
  if (jp_value(p, &item) != 0) return -1;
  members_push(m, &item, key, klen);
  jp_skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == ',') {
    p->pos++;
    return 0;
  }
  if (p->pos < p->len && p->s[p->pos] == close) {
    p->pos++;
    return 1;
  }
  return jp_fail(p, p->pos, object ? "expected ',' or '}' in object" : "expected ',' or ']' in array");
}

static int jp_container(JsonParser *p, JsonValue *v, int object) {
  char close = object ? '}' : ']';
  if (++p->depth > JSON_MAX_DEPTH) return jp_fail(p, p->pos, "nesting too deep");
  v->kind = object ? JSON_OBJECT : JSON_ARRAY;
  p->pos++;
  Members m = {0};
  jp_skip_ws(p);
  int rc = 0;
  if (p->pos < p->len && p->s[p->pos] == close) p->pos++;
  else
    while ((rc = jp_member(p, &m, object, close)) == 0) {
    }
  members_finish(p, &m, v, object);
  p->depth--;
  return rc < 0 ? -1 : 0;
}

static int jp_value(JsonParser *p, JsonValue *v) {
  jp_skip_ws(p);
  v->offset = p->pos;
  if (p->pos >= p->len) return jp_fail(p, p->pos, "unexpected end of text");
  switch (p->s[p->pos]) {
    case '{': return jp_container(p, v, 1);
    case '[': return jp_container(p, v, 0);
    case '"': v->kind = JSON_STRING; return jp_string(p, &v->str, &v->len);
    case 't': v->kind = JSON_BOOL; v->boolean = 1; return jp_literal(p, "true");
    case 'f': v->kind = JSON_BOOL; v->boolean = 0; return jp_literal(p, "false");
    case 'n': v->kind = JSON_NULL; return jp_literal(p, "null");
    default:
      if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')) return jp_number(p, v);
      return jp_fail(p, p->pos, "unexpected character");
  }
}

int json_parse(const char *text, size_t len, JsonDoc *doc, char *err, size_t errlen) {
  memset(doc, 0, sizeof *doc);
  JsonParser p = {.s = text, .len = len, .arena = &doc->arena, .err = err, .errlen = errlen};
  doc->root = arena_alloc(&doc->arena, sizeof *doc->root);
  if (jp_value(&p, doc->root) == 0) {
    jp_skip_ws(&p);
    if (p.pos != len) jp_fail(&p, p.pos, "text after the JSON value");
  }
  if (p.failed) {
    json_free(doc);
    return -1;
  }
  return 0;
}

void json_free(JsonDoc *doc) {
  arena_free(&doc->arena);
  doc->root = NULL;
}

const JsonValue *json_get(const JsonValue *obj, const char *key) {
  if (!obj || obj->kind != JSON_OBJECT) return NULL;
  size_t n = strlen(key);
  for (int i = 0; i < obj->n; i++)
    if (obj->key_lens[i] == n && memcmp(obj->keys[i], key, n) == 0) return &obj->items[i];
  return NULL;
}

const char *json_kind_name(JsonKind k) {
  static const char *const names[] = {"null", "boolean", "number", "string", "array", "object"};
  return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

// ---------------------------------------------------------------- writer

void json_append_string(StrBuf *sb, const char *s, size_t n) {
  sb_append(sb, "\"");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '"': sb_append(sb, "\\\""); break;
      case '\\': sb_append(sb, "\\\\"); break;
      case '\n': sb_append(sb, "\\n"); break;
      case '\r': sb_append(sb, "\\r"); break;
      case '\t': sb_append(sb, "\\t"); break;
      default:
        if (c < 0x20) sb_printf(sb, "\\u%04x", c);
        else sb_appendn(sb, s + i, 1);
    }
  }
  sb_append(sb, "\"");
}

void jw_init(JsonWriter *w, StrBuf *out) {
  memset(w, 0, sizeof *w);
  w->out = out;
  w->first[0] = 1;
}

// Separator before a value (or a key) at the current depth.
static void jw_sep(JsonWriter *w) {
  if (w->after_key) {
    w->after_key = 0;
    return;
  }
  if (!w->first[w->depth]) sb_append(w->out, ",");
  w->first[w->depth] = 0;
}

static void jw_open(JsonWriter *w, const char *bracket) {
  jw_sep(w);
  sb_append(w->out, bracket);
  NAO_ASSERT(w->depth + 1 < JSON_MAX_DEPTH);
  w->first[++w->depth] = 1;
}

static void jw_close(JsonWriter *w, const char *bracket) {
  NAO_ASSERT(w->depth > 0 && !w->after_key);
  w->depth--;
  sb_append(w->out, bracket);
}

void jw_object_begin(JsonWriter *w) { jw_open(w, "{"); }
void jw_object_end(JsonWriter *w) { jw_close(w, "}"); }
void jw_array_begin(JsonWriter *w) { jw_open(w, "["); }
void jw_array_end(JsonWriter *w) { jw_close(w, "]"); }

void jw_key(JsonWriter *w, const char *key) {
  jw_sep(w);
  json_append_string(w->out, key, strlen(key));
  sb_append(w->out, ":");
  w->after_key = 1;
}

void jw_stringn(JsonWriter *w, const char *s, size_t n) {
  jw_sep(w);
  json_append_string(w->out, s, n);
}

void jw_string(JsonWriter *w, const char *s) { jw_stringn(w, s, strlen(s)); }

void jw_int(JsonWriter *w, int64_t v) {
  jw_sep(w);
  sb_printf(w->out, "%lld", (long long)v);
}

void jw_double(JsonWriter *w, double v) {
  jw_sep(w);
  if (!isfinite(v)) {
    sb_append(w->out, "null");
    return;
  }
  char buf[40];
  for (int prec = 1; prec <= 17; prec++) {  // shortest that reads back equal
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  sb_append(w->out, buf);
}

void jw_bool(JsonWriter *w, int v) {
  jw_sep(w);
  sb_append(w->out, v ? "true" : "false");
}

void jw_null(JsonWriter *w) {
  jw_sep(w);
  sb_append(w->out, "null");
}
