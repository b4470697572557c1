// compiler/parse.h — the glue between the flex scanner, the bison parser and
// the rest of the front end: one NaoParse per parse, shared by both.
//
// The scanner (grammar/nao.l) and parser (grammar/nao.y) are pure and
// reentrant: all their state is in the scanner object and in this context, so
// any number of parses may run at once in one process.
#ifndef NAO_PARSE_H
#define NAO_PARSE_H

#include "compiler/ast.h"
#include "compiler/diag.h"

enum {
  NAO_IDENT_MAX = 64,    // characters in an identifier
  NAO_NUMBER_MAX = 64,   // characters in a number or a shape
  NAO_STRING_MAX = 4096, // bytes in a string
};

typedef struct NaoParse {
  NaoSource *src;
  Diag *diag;
  Arena *arena;
  AstFile *file;
  // scanner
  uint32_t offset;       // byte offset of the next character to scan
  NaoLoc comment_open;   // the "/*" of the block comment being scanned
  NaoLoc prev_tok, cur_tok;  // the last two tokens returned
  // parser: the block ('{' .. '}') being parsed, for "opened here" notes
  int block_active;
  NaoLoc block_open;
  const char *block_what;  // "network block", "cell"
} NaoParse;

// Scans and parses the source into p->file. Errors go to p->diag and are
// counted in p->file->syntax_errors. Returns that count.
int nao_parse(NaoParse *p);

// Used by the scanner and the parser (not for other callers).
void nao_parse_error(NaoParse *p, NaoLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
