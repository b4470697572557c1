// tests/unit/test_frontend_robust.c — the front end on hostile input.
//
// Random bytes come 10 MB at a time; the other inputs (one huge token, a flood
// of statements, an endless comment, ...) 4 MB, which tells as much and keeps
// the sanitizer run short. Every one must end with exit 1 (or 0 where the
// input is valid), at most the error limit plus the "too many errors" line,
// diagnostics of bounded size, and bounded time: a quadratic step on these
// sizes would take hours, so the 20 s ceiling per input catches it (each input
// takes well under a second in an optimised build).
// Also: the UTF-8 decoder's edge cases, columns, and caret lines.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler/frontend.h"
#include "tests/unit/check.h"

enum { SIZE = 10 << 20, BIG = 4 << 20 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Lines that start with `prefix` and hold `needle` (error headers start with
// the file name; echoed source lines with spaces, whatever text they hold).
static int count_lines(const char *s, const char *prefix, const char *needle) {
  int n = 0;
  for (const char *p = s; p && *p;) {
    const char *nl = strchr(p, '\n');
    const char *hit = strstr(p, needle);
    if (!strncmp(p, prefix, strlen(prefix)) && hit && (!nl || hit < nl)) n++;
    p = nl ? nl + 1 : NULL;
  }
  return n;
}

// Runs the front end on buf (exactly len bytes) and checks the bounds.
static void hostile(const char *what, const char *buf, size_t len, int want_rc) {
  StrBuf d = {0};
  NetSpec ns;
  double t0 = now();
  int rc = nao_frontend_text_sink(what, buf, len, &ns, (DiagSink){NULL, &d, 0});
  double secs = now() - t0;
  int errors = d.data ? count_lines(d.data, what, ": error: ") : 0;
  printf("  %-34s rc %d, %2d errors, %6zu bytes of diagnostics, %.3f s\n", what, rc, errors, d.len, secs);
  CHECK(rc == want_rc, "%s: rc %d, want %d\n%.2000s", what, rc, want_rc, d.data ? d.data : "");
  CHECK(errors <= NAO_DIAG_MAX_ERRORS + 1, "%s: %d errors", what, errors);
  CHECK(d.len < 64 * 1024, "%s: %zu bytes of diagnostics", what, d.len);
  CHECK(secs < 20.0, "%s: %.1f s", what, secs);
  sb_free(&d);
}

static char *repeat(const char *unit, size_t total, size_t *len) {
  size_t n = strlen(unit), reps = total / n;
  char *buf = xmalloc(reps * n);
  for (size_t i = 0; i < reps; i++) memcpy(buf + i * n, unit, n);
  *len = reps * n;
  return buf;
}

static void test_hostile(void) {
  size_t len;
  char *buf = xmalloc(SIZE);
  uint64_t s = 0x5eed;
  for (int seed = 0; seed < 2; seed++) {
    for (size_t i = 0; i < SIZE; i++) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;  // xorshift64
      buf[i] = (char)(s >> 24);
    }
    hostile(seed == 0 ? "10 MB of random bytes" : "10 MB of random bytes again", buf, SIZE, 1);
  }
  // Random printable ASCII: many tokens, many syntax errors.
  for (size_t i = 0; i < SIZE; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    buf[i] = (char)(' ' + (s >> 33) % 95);
  }
  hostile("10 MB of random printable ASCII", buf, SIZE, 1);
  memset(buf, 'a', BIG);
  hostile("one 4 MB identifier", buf, BIG, 1);
  memset(buf, '7', BIG);
  hostile("one 4 MB number", buf, BIG, 1);
  memset(buf, 0, BIG);
  hostile("4 MB of NUL", buf, BIG, 1);
  memset(buf, '\n', BIG);
  hostile("4 MB of newlines", buf, BIG, 1);
  memset(buf, '(', BIG);
  hostile("4 MB of '('", buf, BIG, 1);
  memset(buf, 0xff, BIG);
  hostile("4 MB of 0xff", buf, BIG, 1);
  buf[0] = '/', buf[1] = '*';
  memset(buf + 2, ' ', BIG - 2);
  hostile("an unterminated 4 MB comment", buf, BIG, 1);
  buf[0] = '"';
  memset(buf + 1, '1', BIG - 1);
  hostile("an unterminated 4 MB string", buf, BIG, 1);
  buf[0] = '/', buf[1] = '/';
  memset(buf + 2, 0, BIG - 2);
  hostile("a 4 MB line comment of NULs", buf, BIG, 1);
  free(buf);

  char *r = repeat("x 1;", BIG, &len);
  memcpy(r, "network{", 8);
  hostile("1 M settings", r, len, 1);
  free(r);
  r = repeat("network n { channels 8; }\n", BIG, &len);
  hostile("160 k network blocks", r, len, 1);
  free(r);
  r = repeat("cell normal = \"0 0 1 1\";\n", BIG, &len);
  hostile("160 k cells", r, len, 1);
  free(r);
  r = repeat("node 2 = sep3x3(0) + sep3x3(1);\n", BIG, &len);
  memcpy(r, "cell normal { ", 14);
  hostile("130 k nodes in one cell", r, len, 1);
  free(r);
  r = repeat("}}}}{{{{;;;;", BIG, &len);
  hostile("4 MB of braces", r, len, 1);
  free(r);
  r = repeat("\xe6\xbc\xa2", BIG, &len);  // valid UTF-8, outside a comment
  hostile("4 MB of CJK characters", r, len, 1);
  free(r);
  // Valid: a good network followed by 4 MB of comment.
  StrBuf ok = {0};
  sb_append(&ok, "network { }\ncell normal = \"0 0 1 1\";\ncell reduction = \"0 4 1 4\";\n/*");
  for (int i = 0; i < 40000; i++) sb_append(&ok, "a comment of a hundred bytes, repeated: it must be skipped in linear time, nothing more ......\n");
  sb_append(&ok, "*/\n");
  hostile("a network and 4 MB of comment", ok.data, ok.len, 0);
  sb_free(&ok);
}

// ---------------------------------------------------------------- details

static void test_utf8(void) {
  static const struct {
    const char *bytes;
    int len;
  } cases[] = {
      {"a", 1},          {"\xc3\xa9", 2},        {"\xe6\xbc\xa2", 3},   {"\xf0\x9f\x98\x80", 4},
      {"\xc0\xaf", 0},   // overlong '/'
      {"\xe0\x80\xaf", 0},  // overlong
      {"\xed\xa0\x80", 0},  // surrogate U+D800
      {"\xf4\x90\x80\x80", 0},  // above U+10FFFF
      {"\x80", 0},       {"\xff", 0},           {"\xc3", 0},  // truncated
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int n = nao_utf8_len((const unsigned char *)cases[i].bytes, strlen(cases[i].bytes));
    CHECK(n == cases[i].len, "case %zu: %d, want %d", i, n, cases[i].len);
  }
  CHECK(nao_utf8_decode((const unsigned char *)"\xf0\x9f\x98\x80", 4) == 0x1F600, "decode");
}

// The diagnostic of a one-line file with an unknown setting at `name`.
static char *diag_of(const char *text) {
  StrBuf d = {0};
  NetSpec ns;
  nao_frontend_text_sink("d.nao", text, strlen(text), &ns, (DiagSink){NULL, &d, 1});
  return sb_steal(&d);
}

static void test_carets(void) {
  // Tabs before the place are repeated in the caret line.
  char *d = diag_of("network {\n\t \tbogus 1;\n}");
  CHECK(strstr(d, "d.nao:2:4: error: unknown setting 'bogus'") != NULL, "%s", d);
  CHECK(strstr(d, "    2 | \t \tbogus 1;\n      | \t \t^~~~~\n") != NULL, "%s", d);
  free(d);
  // Multi-byte characters count one column each; wide ones take two caret cells.
  // "network { /* éé */ " is 19 characters and 19 cells: "bogus" is column 20.
  d = diag_of("network { /* \xc3\xa9\xc3\xa9 */ bogus 1; }");
  CHECK(strstr(d, "d.nao:1:20: error:") != NULL, "%s", d);
  CHECK(strstr(d, "\n      |                    ^~~~~\n") != NULL, "%s", d);
  free(d);
  // "network { /* 漢 */ " is 18 characters but 19 cells: column 19, 19 spaces.
  d = diag_of("network { /* \xe6\xbc\xa2 */ bogus 1; }");
  CHECK(strstr(d, "d.nao:1:19: error:") != NULL, "%s", d);
  CHECK(strstr(d, "\n      |                    ^~~~~\n") != NULL, "%s", d);
  free(d);
  // CR LF line ends: the CR is not shown.
  d = diag_of("network {\r\n  bogus 1;\r\n}\r\n");
  CHECK(strstr(d, "    2 |   bogus 1;\n") != NULL, "%s", d);
  free(d);
  // A long line is cut around the place, with "..." on both sides.
  StrBuf t = {0};
  sb_append(&t, "network { /*");
  for (int i = 0; i < 500; i++) sb_append(&t, "-");
  sb_append(&t, "*/ bogus 1; /*");
  for (int i = 0; i < 500; i++) sb_append(&t, "-");
  sb_append(&t, "*/ }");
  d = diag_of(t.data);
  CHECK(strstr(d, "d.nao:1:516: error:") != NULL, "%s", d);  // 12 + 500 + 3 characters before
  const char *line = strstr(d, "    1 | ...");
  const char *caret = strstr(d, "      |    ");
  CHECK(line && caret && strlen(line) < 400, "%s", d);
  if (line && caret) {
    const char *b = strstr(line, "bogus"), *c = strchr(caret, '^');
    CHECK(b && c && b - line == c - caret, "caret not under the name:\n%s", d);
  }
  free(d);
  sb_free(&t);
}

int main(void) {
  test_utf8();
  test_carets();
  test_hostile();
  return check_done("test_frontend_robust");
}
