// compiler/ast.c — list building for the parser and token helpers.
//
// Lists keep at most AST_MAX_LIST / AST_MAX_ITEMS entries (see ast.h); the
// counts go on, so sema can say how many there were.
#include "compiler/ast.h"

#include <string.h>

void ast_settings_append(AstSettingList *l, AstSetting *s) {
  l->n++;
  if (!s || l->n > AST_MAX_LIST) return;
  if (l->tail) l->tail->next = s;
  else l->head = s;
  l->tail = s;
}

void ast_nodes_append(AstNodeList *l, AstNode *n) {
  l->n++;
  if (!n || l->n > AST_MAX_LIST) return;
  if (l->tail) l->tail->next = n;
  else l->head = n;
  l->tail = n;
}

void ast_file_add_network(AstFile *f, AstNetwork *n) {
  if (++f->n_networks > AST_MAX_ITEMS) return;
  if (f->networks_tail) f->networks_tail->next = n;
  else f->networks = n;
  f->networks_tail = n;
}

void ast_file_add_cell(AstFile *f, AstCell *c) {
  if (++f->n_cells > AST_MAX_ITEMS) return;
  if (f->cells_tail) f->cells_tail->next = c;
  else f->cells = c;
  f->cells_tail = c;
}

int ast_tok_is(const AstTok *t, const char *s) {
  size_t n = strlen(s);
  return t->len == n && memcmp(t->text, s, n) == 0;
}

int ast_tok_copy(const AstTok *t, char *buf, size_t cap) {
  if (t->len < cap) {
    memcpy(buf, t->text, t->len);
    buf[t->len] = '\0';
    return 0;
  }
  size_t keep = cap > 4 ? cap - 4 : 0;
  memcpy(buf, t->text, keep);
  strcpy(buf + keep, cap > 4 ? "..." : "");
  return -1;
}
