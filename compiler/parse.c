// compiler/parse.c — runs the reentrant scanner and parser over one source.
//
// The scanner reads the source from its own copy (flex's yy_scan_bytes), so
// the text may hold NUL bytes and need not end in one. Everything the parse
// allocates lives in the scanner object (freed here) or in the Arena.
#include "compiler/parse.h"

#include <stdarg.h>

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
  YY_BUFFER_STATE buf = nao_yy_scan_bytes(p->src->text, (int)p->src->len, scanner);
  if (!buf) nao_internal("nao_yy_scan_bytes failed for %zu bytes", p->src->len);
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
