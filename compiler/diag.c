// compiler/diag.c — formatting diagnostics: the header line, the source line
// and the caret line (see diag.h for the format and the error limit).
#include "compiler/diag.h"

#include <stdarg.h>
#include <string.h>

enum {
  SNIPPET_WIDTH = 160,  // characters of a source line shown at most
  SNIPPET_LEAD = 60,    // characters kept before the caret when a line is cut
};

void diag_init(Diag *d, NaoSource *src, DiagSink sink) {
  memset(d, 0, sizeof *d);
  d->src = src;
  d->sink = sink;
  if (d->sink.max_errors <= 0) d->sink.max_errors = NAO_DIAG_MAX_ERRORS;
}

static void emit(Diag *d, const StrBuf *sb) {
  if (d->sink.file) {
    fwrite(sb->data, 1, sb->len, d->sink.file);
    fflush(d->sink.file);
  }
  if (d->sink.buf) sb_appendn(d->sink.buf, sb->data, sb->len);
}

// ---------------------------------------------------------------- snippet

// One character of a line: a valid UTF-8 sequence, or one byte that is not.
typedef struct {
  const unsigned char *t;
  uint32_t p, end;
} LineWalk;

static uint32_t walk_step(LineWalk *w) {
  int n = nao_utf8_len(w->t + w->p, w->end - w->p);
  return n ? (uint32_t)n : 1;
}

// Terminal columns a code point takes: 0 for combining marks, 2 for the wide
// East Asian ranges and emoji, 1 otherwise (enough to keep carets aligned).
static int char_width(uint32_t cp) {
  if (cp >= 0x300 && cp <= 0x36F) return 0;
  if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
      (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
      (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) || (cp >= 0x1F900 && cp <= 0x1F9FF) ||
      (cp >= 0x20000 && cp <= 0x3FFFD))
    return 2;
  return 1;
}

// The caret-line filler under the character at w->p (n bytes): a tab stays a
// tab, others become as many spaces as the character is wide.
static int shown_width(const LineWalk *w, uint32_t n) {
  if (n > 1 && nao_utf8_len(w->t + w->p, n) == (int)n) {
    uint32_t cp = nao_utf8_decode(w->t + w->p, (int)n);
    return nao_utf8_invisible(cp) ? 1 : char_width(cp);
  }
  return 1;
}

static void pad_char(StrBuf *sb, const LineWalk *w, uint32_t n) {
  if (w->t[w->p] == '\t') sb_append(sb, "\t");
  else sb_appendn(sb, "  ", (size_t)shown_width(w, n));
}

// The underline under a character of the span: '^' (first) or '~', as wide
// as the character.
static void mark_char(StrBuf *sb, const LineWalk *w, uint32_t n, int first) {
  int width = shown_width(w, n);
  if (width == 0) return;
  sb_append(sb, first ? "^" : "~");
  if (width == 2) sb_append(sb, "~");
}

// Appends the character at w->p as shown: tabs and printable characters as
// they are, anything else as '?'.
static void show_char(StrBuf *sb, LineWalk *w, uint32_t n) {
  unsigned c = w->t[w->p];
  int ok = n > 1 ? nao_utf8_len(w->t + w->p, n) == (int)n : (c == '\t' || (c >= 0x20 && c < 0x7F));
  if (n > 1 && ok) ok = !nao_utf8_invisible(nao_utf8_decode(w->t + w->p, (int)n));
  if (ok) sb_appendn(sb, (const char *)w->t + w->p, n);
  else sb_append(sb, "?");
}

static void snippet(Diag *d, StrBuf *sb, NaoLoc loc) {
  NaoSource *src = d->src;
  uint32_t lb, le;
  size_t line = nao_source_line(src, loc.begin, &lb, &le);
  if (le == lb) return;  // an empty line shows nothing useful
  uint32_t begin = loc.begin > le ? le : loc.begin;
  uint32_t end = loc.end < begin ? begin : (loc.end > le ? le : loc.end);
  uint32_t ub = nao_source_column(src, begin) - 1;  // characters before the place
  uint32_t ws = ub > SNIPPET_LEAD ? ub - SNIPPET_LEAD : 0;
  // Characters ws .. ws + SNIPPET_WIDTH are shown; find where they start.
  LineWalk w = {(const unsigned char *)src->text, lb, le};
  uint32_t u = 0;
  while (u < ws && w.p < le) w.p += walk_step(&w), u++;

  StrBuf text = {0}, caret = {0};
  if (ws > 0) {
    sb_append(&text, "...");
    sb_append(&caret, "   ");
  }
  int carets = 0;
  for (u = ws; w.p < le && u < ws + SNIPPET_WIDTH; u++) {
    uint32_t n = walk_step(&w);
    show_char(&text, &w, n);
    if (w.p + n <= begin) pad_char(&caret, &w, n);
    else if (w.p <= begin) mark_char(&caret, &w, n, 1), carets++;
    else if (w.p < end) mark_char(&caret, &w, n, 0);
    w.p += n;
  }
  if (w.p < le) sb_append(&text, "...");
  if (!carets) sb_append(&caret, "^");  // the place is the end of the line
  sb_printf(sb, "%5zu | %s\n      | %s\n", line, text.data ? text.data : "", caret.data);
  sb_free(&text);
  sb_free(&caret);
}

// ---------------------------------------------------------------- messages

static void report(Diag *d, const char *kind, NaoLoc loc, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void report(Diag *d, const char *kind, NaoLoc loc, const char *fmt, va_list ap) {
  StrBuf sb = {0};
  NaoSource *src = d->src;
  size_t line = nao_source_line(src, loc.begin, NULL, NULL);
  uint32_t col = nao_source_column(src, loc.begin);
  sb_printf(&sb, "%s:%zu:%u: %s: ", src->name, line, col, kind);
  sb_vprintf(&sb, fmt, ap);
  sb_append(&sb, "\n");
  snippet(d, &sb, loc);
  emit(d, &sb);
  sb_free(&sb);
}

void diag_verror(Diag *d, NaoLoc loc, const char *fmt, va_list ap) {
  d->n_errors++;
  d->note_shown = 0;
  if (d->stopped) return;
  if (d->n_errors > d->sink.max_errors) {
    StrBuf sb = {0};
    NaoSource *src = d->src;
    sb_printf(&sb, "%s:%zu:%u: error: too many errors, stopping after %d\n", src->name,
              nao_source_line(src, loc.begin, NULL, NULL), nao_source_column(src, loc.begin),
              d->sink.max_errors);
    emit(d, &sb);
    sb_free(&sb);
    d->stopped = 1;
    return;
  }
  report(d, "error", loc, fmt, ap);
  d->note_shown = 1;
}

void diag_error(Diag *d, NaoLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(d, loc, fmt, ap);
  va_end(ap);
}

void diag_note(Diag *d, NaoLoc loc, const char *fmt, ...) {
  if (!d->note_shown) return;
  va_list ap;
  va_start(ap, fmt);
  report(d, "note", loc, fmt, ap);
  va_end(ap);
}

void diag_file_error(Diag *d, const char *fmt, ...) {
  d->n_errors++;
  d->note_shown = 0;
  if (d->stopped) return;
  StrBuf sb = {0};
  va_list ap;
  va_start(ap, fmt);
  sb_printf(&sb, "%s: error: ", d->src->name);
  sb_vprintf(&sb, fmt, ap);
  va_end(ap);
  sb_append(&sb, "\n");
  emit(d, &sb);
  sb_free(&sb);
  d->note_shown = 1;
}
