// compiler/sema_impl.h — what sema.c (the file, its settings, the layout) and
// sema_cell.c (the cells) share. Private to those two files.
#ifndef NAO_SEMA_IMPL_H
#define NAO_SEMA_IMPL_H

#include "compiler/sema.h"

typedef struct {
  Diag *diag;
  const AstFile *file;
  NetSpec *spec;
  NetSpecLocs *locs;
  const AstNetwork *network;          // the first network block, or NULL
  const AstSetting *setting[SET_COUNT];  // each setting's first occurrence
  int setting_ok[SET_COUNT];          // ... and whether its value is good
  const AstCell *cell[2];             // each cell's first definition
  int cell_ok[2];                     // ... and whether it is complete and valid
  int unknown_cell;                   // a cell of unknown kind was reported
} Sema;

// Reads one cell (either form) into s->spec->cell[kind] and s->locs.
// Sets s->cell_ok[kind].
void sema_cell(Sema *s, const AstCell *c, CellKind kind);

// Copies a token's text for a message or a lookup (cut with "..." when long).
const char *sema_tok(const AstTok *t, char *buf, size_t cap);

#endif
