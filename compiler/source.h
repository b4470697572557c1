// compiler/source.h — a source text, places in it, and how to show them.
//
// A NaoLoc is a half-open byte range [begin, end) into one NaoSource. Lines and
// columns are derived from it only when a diagnostic is printed, so the scanner
// keeps just a byte offset. Columns count characters, 1-based: a valid UTF-8
// sequence is one column, and so is every byte that is not part of one (an
// invalid byte, a NUL); a tab is one column, as in gcc and clang.
//
// Invariants: text[len] == '\0' (the text may also hold NUL bytes before it);
// len < NAO_SOURCE_MAX, so every offset fits a uint32_t. The line index is built
// on first use and owned by the NaoSource.
#ifndef NAO_SOURCE_H
#define NAO_SOURCE_H

#include <stddef.h>
#include <stdint.h>

enum { NAO_SOURCE_MAX = 256u << 20 };  // 256 MiB: far above any real .nao file

typedef struct {
  uint32_t begin, end;  // byte offsets; end == begin: a point (an insertion place)
} NaoLoc;

typedef struct {
  char *name;         // as printed in messages (owned)
  char *text;         // the bytes, NUL-terminated (owned)
  size_t len;
  uint32_t *line_start;  // offsets where lines start; built lazily
  size_t n_lines;
  // Memo of the last column computed, so that many diagnostics on one long
  // line cost one pass over it rather than one pass each.
  size_t memo_line;
  uint32_t memo_off, memo_col;
  int memo_valid;
} NaoSource;

// Copies name and text. Returns 0, or -1 when len is NAO_SOURCE_MAX or more.
int nao_source_init(NaoSource *src, const char *name, const char *text, size_t len);
void nao_source_free(NaoSource *src);

static inline NaoLoc nao_loc(uint32_t begin, uint32_t end) { return (NaoLoc){begin, end}; }
static inline NaoLoc nao_loc_span(NaoLoc a, NaoLoc b) { return (NaoLoc){a.begin, b.end}; }

// The 1-based line holding byte `off`, and the offsets of that line's first
// byte and of its end (the '\n', or the end of the text; a '\r' before the
// '\n' is left out).
size_t nao_source_line(NaoSource *src, uint32_t off, uint32_t *line_begin, uint32_t *line_end);
// The 1-based column of byte `off` (see the top of this file).
uint32_t nao_source_column(NaoSource *src, uint32_t off);

// ---------------------------------------------------------------- UTF-8
// Length of the valid UTF-8 sequence at p (at most `avail` bytes): 1 for ASCII
// (NUL included), 2-4 for a valid multi-byte sequence, 0 for an invalid byte
// (overlong forms, surrogates, code points above U+10FFFF are invalid).
int nao_utf8_len(const unsigned char *p, size_t avail);
// The code point of a valid sequence of length n.
uint32_t nao_utf8_decode(const unsigned char *p, int n);
// Whether a code point shows as nothing (C0/C1 controls, format characters,
// the byte order mark): messages and source lines print it as '?' or U+XXXX.
int nao_utf8_invisible(uint32_t cp);

#endif
