// compiler/frontend.c — a compilation unit: source, parse, checks.
#include "compiler/frontend.h"

#include <stdlib.h>
#include <string.h>

#include "compiler/parse.h"

int nao_unit_init(NaoUnit *u, const char *name, const char *text, size_t len, DiagSink sink) {
  memset(u, 0, sizeof *u);
  u->status = NAO_EXIT_OK;
  int fits = len < NAO_SOURCE_MAX;
  nao_source_init(&u->src, name, fits ? text : "", fits ? len : 0);
  diag_init(&u->diag, &u->src, sink);
  if (!fits) {
    diag_file_error(&u->diag, "the file is too large (%zu bytes; a .nao file is at most %u bytes)", len,
                    (unsigned)NAO_SOURCE_MAX - 1);
    u->status = NAO_EXIT_INPUT;
    u->parsed = u->checked = 1;
  }
  return u->status;
}

int nao_unit_init_file(NaoUnit *u, const char *path, DiagSink sink) {
  size_t len = 0;
  const char *err = NULL;
  char *text = nao_read_file(path, &len, &err);
  if (!text) {
    nao_unit_init(u, path, "", 0, sink);
    diag_file_error(&u->diag, "cannot read the file: %s", err);
    u->status = NAO_EXIT_INPUT;
    u->parsed = u->checked = 1;
    return u->status;
  }
  int rc = nao_unit_init(u, path, text, len, sink);
  free(text);
  return rc;
}

int nao_unit_parse(NaoUnit *u) {
  if (!u->parsed) {
    u->parsed = 1;
    NaoParse p = {0};
    p.src = &u->src;
    p.diag = &u->diag;
    p.arena = &u->arena;
    p.file = &u->ast;
    nao_parse(&p);
    if (u->ast.syntax_errors) u->status = NAO_EXIT_INPUT;
  }
  return u->ast.syntax_errors;
}

int nao_unit_check(NaoUnit *u) {
  nao_unit_parse(u);
  if (!u->checked) {
    u->checked = 1;
    if (sema_check(&u->ast, &u->diag, &u->spec, &u->locs)) u->status = NAO_EXIT_INPUT;
    if (u->diag.n_errors) u->status = NAO_EXIT_INPUT;
  }
  return u->status;
}

void nao_unit_free(NaoUnit *u) {
  arena_free(&u->arena);
  nao_source_free(&u->src);
  memset(u, 0, sizeof *u);
}

// ---------------------------------------------------------------- one call

static int finish(NaoUnit *u, NetSpec *out) {
  int rc = nao_unit_check(u);
  if (out) *out = u->spec;
  nao_unit_free(u);
  return rc;
}

int nao_frontend_text_sink(const char *name, const char *text, size_t len, NetSpec *out, DiagSink sink) {
  NaoUnit u;
  nao_unit_init(&u, name, text, len, sink);
  return finish(&u, out);
}

int nao_frontend_text(const char *name, const char *text, size_t len, NetSpec *out, FILE *diag_out) {
  return nao_frontend_text_sink(name, text, len, out, (DiagSink){diag_out, NULL, 0});
}

int nao_frontend_file(const char *path, NetSpec *out, FILE *diag_out) {
  NaoUnit u;
  nao_unit_init_file(&u, path, (DiagSink){diag_out, NULL, 0});
  return finish(&u, out);
}
