// compiler/source.c — source texts, their line index, columns, UTF-8.
#include "compiler/source.h"

#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"

int nao_source_init(NaoSource *src, const char *name, const char *text, size_t len) {
  memset(src, 0, sizeof *src);
  if (len >= NAO_SOURCE_MAX) return -1;
  src->name = xstrdup(name);
  src->text = xmalloc(len + 1);
  if (len) memcpy(src->text, text, len);
  src->text[len] = '\0';
  src->len = len;
  return 0;
}

void nao_source_free(NaoSource *src) {
  free(src->name);
  free(src->text);
  free(src->line_start);
  memset(src, 0, sizeof *src);
}

static void build_line_index(NaoSource *src) {
  size_t n = 1;
  for (size_t i = 0; i < src->len; i++) n += src->text[i] == '\n';
  src->line_start = xmalloc(n * sizeof *src->line_start);
  size_t k = 0;
  src->line_start[k++] = 0;
  for (size_t i = 0; i < src->len; i++)
    if (src->text[i] == '\n') src->line_start[k++] = (uint32_t)(i + 1);
  src->n_lines = n;
}

size_t nao_source_line(NaoSource *src, uint32_t off, uint32_t *line_begin, uint32_t *line_end) {
  if (!src->line_start) build_line_index(src);
  if (off > src->len) off = (uint32_t)src->len;
  // The last line start <= off.
  size_t lo = 0, hi = src->n_lines;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (src->line_start[mid] <= off) lo = mid;
    else hi = mid;
  }
  uint32_t b = src->line_start[lo];
  uint32_t e = lo + 1 < src->n_lines ? src->line_start[lo + 1] - 1 : (uint32_t)src->len;
  if (e > b && src->text[e - 1] == '\r') e--;
  if (line_begin) *line_begin = b;
  if (line_end) *line_end = e;
  return lo + 1;
}

uint32_t nao_source_column(NaoSource *src, uint32_t off) {
  uint32_t b;
  size_t line = nao_source_line(src, off, &b, NULL);
  if (off > src->len) off = (uint32_t)src->len;
  uint32_t p = b, col = 1;
  if (src->memo_valid && src->memo_line == line && src->memo_off <= off) {
    p = src->memo_off;
    col = src->memo_col;
  }
  const unsigned char *t = (const unsigned char *)src->text;
  while (p < off) {
    int n = nao_utf8_len(t + p, src->len - p);
    uint32_t step = n ? (uint32_t)n : 1;
    if (p + step > off) break;  // `off` is inside this character: its column
    p += step;
    col++;
  }
  src->memo_valid = 1;
  src->memo_line = line;
  src->memo_off = p;
  src->memo_col = col;
  return col;
}

// ---------------------------------------------------------------- UTF-8

int nao_utf8_len(const unsigned char *p, size_t avail) {
  if (avail == 0) return 0;
  unsigned c = p[0];
  if (c < 0x80) return 1;
  int n;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c == 0xE0) n = 3, lo = 0xA0;
  else if (c == 0xED) n = 3, hi = 0x9F;  // no surrogates
  else if (c >= 0xE1 && c <= 0xEF) n = 3;
  else if (c == 0xF0) n = 4, lo = 0x90;
  else if (c == 0xF4) n = 4, hi = 0x8F;  // nothing above U+10FFFF
  else if (c >= 0xF1 && c <= 0xF3) n = 4;
  else return 0;
  if ((size_t)n > avail) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (int i = 2; i < n; i++)
    if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  return n;
}

uint32_t nao_utf8_decode(const unsigned char *p, int n) {
  switch (n) {
    case 1: return p[0];
    case 2: return (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
    case 3: return (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    case 4:
      return (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
             (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
    default: return 0xFFFD;
  }
}

int nao_utf8_invisible(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || cp == 0xAD || (cp >= 0x200B && cp <= 0x200F) ||
         (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2064) || cp == 0xFEFF;
}
