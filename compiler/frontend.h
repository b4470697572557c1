// compiler/frontend.h — the public entry points of the front end: .nao text
// in, a checked NetSpec out, diagnostics on the way.
//
// Two levels:
//   - nao_frontend_file / nao_frontend_text: one call, a NetSpec and an exit
//     code (NAO_EXIT_OK, or NAO_EXIT_INPUT after printing the diagnostics).
//   - NaoUnit: one compilation kept alive, for callers that go on from the
//     NetSpec and want to point back into the file (the lowering, naoc's
//     views): the source, the syntax tree, where every part was written
//     (NetSpecLocs) and the Diag to report further errors through.
//
// Nothing here is global: any number of units may live, and be worked on, at
// once, in one thread or several. A unit owns everything it allocates (the
// source copy, one Arena for the tree) and frees it in nao_unit_free.
#ifndef NAO_FRONTEND_H
#define NAO_FRONTEND_H

#include <stdio.h>

#include "compiler/ast.h"
#include "compiler/diag.h"
#include "compiler/netspec.h"
#include "compiler/sema.h"
#include "compiler/source.h"

typedef struct {
  NaoSource src;
  Arena arena;     // the syntax tree
  Diag diag;
  AstFile ast;
  NetSpec spec;    // valid once nao_unit_check returned NAO_EXIT_OK
  NetSpecLocs locs;
  int parsed, checked;
  int status;      // NAO_EXIT_OK or NAO_EXIT_INPUT
} NaoUnit;

// Sets up a unit over a copy of `text` (len bytes; NULs allowed, no final NUL
// needed). `name` is the file name used in messages. Returns NAO_EXIT_OK, or
// NAO_EXIT_INPUT after reporting a text too large to address (256 MiB);
// the unit must be freed either way.
int nao_unit_init(NaoUnit *u, const char *name, const char *text, size_t len, DiagSink sink);
// The same over a file's contents; an unreadable file is reported as
// "PATH: error: cannot read the file: REASON".
int nao_unit_init_file(NaoUnit *u, const char *path, DiagSink sink);
// Scans and parses (once). Returns the syntax errors found.
int nao_unit_parse(NaoUnit *u);
// Parses if needed, then checks. Returns NAO_EXIT_OK when u->spec is a valid
// network, else NAO_EXIT_INPUT (the diagnostics have gone to the sink).
int nao_unit_check(NaoUnit *u);
void nao_unit_free(NaoUnit *u);

// One call: check the file or the text and fill *out. diag_out may be NULL.
int nao_frontend_file(const char *path, NetSpec *out, FILE *diag_out);
int nao_frontend_text(const char *name, const char *text, size_t len, NetSpec *out, FILE *diag_out);
// The same with any sink (a StrBuf, a different error limit).
int nao_frontend_text_sink(const char *name, const char *text, size_t len, NetSpec *out, DiagSink sink);

#endif
