// compiler/parse.c — runs the reentrant scanner and parser over one source.
//
// The scanner reads the source from its own copy (flex's yy_scan_bytes), so
// the text need not end in a NUL; NULs inside it reach the scanner as 0xFF. Everything the parse
// allocates lives in the scanner object (freed here) or in the Arena.
#include "compiler/parse.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "nao.tab.h"
#define YYSTYPE NAO_YYSTYPE
#define YYLTYPE NAO_YYLTYPE
#include "nao.lex.h"

void nao_parse_error(NaoParse *p, NaoLoc loc, const char *fmt, ...) {
  p->file->syntax_errors++;
  va_list ap;
  va_start(ap, fmt);
  diag_verror(p->diag, loc, fmt, ap);
  va_end(ap);
}

int nao_parse(NaoParse *p) {
  yyscan_t scanner;
  if (nao_yylex_init_extra(p, &scanner) != 0) nao_internal("nao_yylex_init_extra failed");
  // The scanner gets NULs as 0xFF (see grammar/nao.l on why); the original
  // stays in p->src for the messages.
  const char *text = p->src->text;
  char *copy = NULL;
  if (memchr(text, 0, p->src->len)) {
    copy = xmalloc(p->src->len + 1);
    for (size_t i = 0; i < p->src->len; i++) copy[i] = text[i] ? text[i] : (char)0xFF;
    text = copy;
  }
  // A UTF-8 byte order mark at the start is skipped (some editors write one).
  size_t skip = p->src->len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0;
  p->offset = (uint32_t)skip;
  YY_BUFFER_STATE buf = nao_yy_scan_bytes(text + skip, (int)(p->src->len - skip), scanner);
  if (!buf) nao_internal("nao_yy_scan_bytes failed for %zu bytes", p->src->len);
  free(copy);
  int rc = nao_yyparse(scanner, p);
  nao_yy_delete_buffer(buf, scanner);
  nao_yylex_destroy(scanner);
  // rc 1: an error bison could not recover from (already reported, or the
  // parse was cut short by the error limit); rc 2: bison ran out of memory,
  // reported through nao_yyerror.
  if (rc != 0 && p->file->syntax_errors == 0 && !p->diag->stopped)
    nao_parse_error(p, p->cur_tok, "the parser gave up here");
  p->file->end = p->cur_tok;
  return p->file->syntax_errors;
}
