// compiler/sema_cell.c — the checks of one cell, written as node lines or as
// a string of arch tokens, into a NetCell and the places of its parts.
//
// Both forms meet the same rules (netcell_check's, worded for the user): node
// b+2 (b = 0, 1, ...) sums two branches, each an op applied to a state 0..b+1;
// a cell has 1 to NAO_MAX_NODES nodes. A node input that names the node
// itself, a later node, or no state at all gets its own message; so does an
// unknown op (with the closest name) and an op id out of range.
#include <stdio.h>
#include <string.h>

#include "compiler/ops.h"
#include "compiler/sema_impl.h"

static const char *const cell_name[2] = {"normal", "reduction"};

// What node `self` may use, for messages: "states 0 and 1 (the cell's
// inputs) or 2 to 4 (earlier nodes)".
static void allowed_inputs(int self, char *buf, size_t cap) {
  if (self == 2) snprintf(buf, cap, "states 0 and 1 (the cell's inputs)");
  else if (self == 3) snprintf(buf, cap, "states 0 and 1 (the cell's inputs) or 2 (node 2)");
  else if (self == 4) snprintf(buf, cap, "states 0 and 1 (the cell's inputs) or 2 and 3 (earlier nodes)");
  else snprintf(buf, cap, "states 0 and 1 (the cell's inputs) or 2 to %d (earlier nodes)", self - 1);
}

// Why input `v` (written as `text`) of node `self` in a cell of `nb` nodes is
// wrong; 0 when it is fine.
static int input_problem(long v, const char *text, int self, int nb, char *err, size_t cap) {
  if (v >= 0 && v < self) return 0;
  char allowed[96];
  allowed_inputs(self, allowed, sizeof allowed);
  if (v == self)
    snprintf(err, cap, "node %d cannot take its own output as an input; it may use %s", self, allowed);
  else if (v > self && v <= nb + 1)
    snprintf(err, cap, "node %d cannot use node %ld, which comes after it; it may use %s", self, v,
             allowed);
  else
    snprintf(err, cap, "there is no state %s in this cell; node %d may use %s", text, self, allowed);
  return -1;
}

static void unknown_op(Sema *s, const AstTok *t) {
  char name[NAO_NAME_MAX + 8];
  sema_tok(t, name, sizeof name);
  const char *near = nao_op_suggest(name);
  if (near) {
    diag_error(s->diag, t->loc, "unknown op '%s'; did you mean '%s'?", name, near);
    return;
  }
  StrBuf sb = {0};
  for (int i = 0; i < NAO_OP_COUNT; i++) sb_printf(&sb, "%s%s", i ? ", " : "", nao_op_info(i)->name);
  diag_error(s->diag, t->loc, "unknown op '%s'; the ops are %s", name, sb.data);
  sb_free(&sb);
}

// ---------------------------------------------------------------- node lines

// The id node `pos` (0-based) stands for: its written number when that is a
// plausible node id, else its position. Its inputs are judged against it, so a
// misnumbered node gets one error (its number), not one per input.
static int node_self(const AstNode *n, int pos) {
  char buf[32];
  long v;
  if (sema_tok(&n->id, buf, sizeof buf) && nao_parse_long(buf, &v) == 0 && v >= 2 &&
      v < 2 + NAO_MAX_NODES)
    return (int)v;
  return pos + 2;
}

// Node numbering: 2, 3, ... in order. Returns 0 when the number is right.
static int check_number(Sema *s, const AstNode *n, int pos, const AstNode *first) {
  char buf[80];
  long v;
  int expect = pos + 2;
  sema_tok(&n->id, buf, sizeof buf);
  int rc = nao_parse_long(buf, &v);
  if (rc == 0 && v == expect) return 0;
  if (n->id.bad) return -1;
  if (rc == 0) {
    for (const AstNode *m = first; m != n; m = m->next) {
      long w;
      char b2[80];
      if (nao_parse_long(sema_tok(&m->id, b2, sizeof b2), &w) == 0 && w == v) {
        diag_error(s->diag, n->id.loc, "node %ld is defined twice; expected node %d here", v, expect);
        diag_note(s->diag, m->loc, "node %ld was first defined here", v);
        return -1;
      }
    }
  }
  diag_error(s->diag, n->id.loc, "expected node %d here, not %s: nodes are numbered 2, 3, 4, ... in order",
             expect, buf);
  return -1;
}

static int check_branch(Sema *s, const AstBranch *br, int self, int nb, int *in, int *op) {
  int ok = 1;
  char buf[80], err[256];
  const NaoOpInfo *oi = NULL;
  if (!br->op.bad) {
    sema_tok(&br->op, buf, sizeof buf);
    oi = nao_op_by_name(buf);
    if (!oi) unknown_op(s, &br->op);
  }
  ok &= oi != NULL;
  if (oi) *op = (int)oi->id;
  if (br->input.bad) return 0;
  long v;
  sema_tok(&br->input, buf, sizeof buf);
  int rc = nao_parse_long(buf, &v);
  if (rc < 0) {
    diag_error(s->diag, br->input.loc, "a node input is a state number (an integer), not %s", buf);
    return 0;
  }
  if (input_problem(v, buf, self, nb, err, sizeof err)) {
    diag_error(s->diag, br->input.loc, "%s", err);
    return 0;
  }
  *in = (int)v;
  return ok;
}

static void too_many_nodes(Sema *s, const AstCell *c, CellKind k, const AstNode *n, int count) {
  diag_error(s->diag, n ? n->loc : c->kind.loc,
             "cell '%s' has %d nodes; a cell has 1 to %d (node 2 to node %d)", cell_name[k], count,
             NAO_MAX_NODES, NAO_MAX_NODES + 1);
}

static int node_cell(Sema *s, const AstCell *c, CellKind k) {
  NetCell *cell = &s->spec->cell[k];
  int ok = !c->broken;
  int nb = c->nodes.n;  // nodes written, stored or not, broken ones included
  if (nb == 0) {
    if (!c->broken)
      diag_error(s->diag, nao_loc_span(c->keyword, c->kind.loc),
                 "cell '%s' has no nodes; write at least one, e.g. 'node 2 = sep3x3(0) + identity(1);'",
                 cell_name[k]);
    return 0;
  }
  int pos = 0;
  for (const AstNode *n = c->nodes.head; n; n = n->next, pos++) {
    if (pos == NAO_MAX_NODES) {
      too_many_nodes(s, c, k, n, nb);
      return 0;
    }
    int self = node_self(n, pos);  // what the writer meant, for judging inputs
    if (!c->broken && check_number(s, n, pos, c->nodes.head)) ok = 0;
    NetNode *nn = &cell->node[pos];
    ok &= check_branch(s, &n->branch[0], self, nb, &nn->x_in, &nn->x_op);
    ok &= check_branch(s, &n->branch[1], self, nb, &nn->y_in, &nn->y_op);
    s->locs->cell[k].node[pos] = n->loc;
    for (int j = 0; j < 2; j++) {
      s->locs->cell[k].op[pos][j] = n->branch[j].op.loc;
      s->locs->cell[k].input[pos][j] = n->branch[j].input.loc;
    }
  }
  if (nb > NAO_MAX_NODES) {  // more nodes than the list stores
    too_many_nodes(s, c, k, NULL, nb);
    return 0;
  }
  cell->n_nodes = pos;
  return ok;
}

// ---------------------------------------------------------------- token strings

enum { MAX_TOKENS = 4 * NAO_MAX_NODES };

typedef struct {
  long v;      // LONG_MAX when too large for a long
  NaoLoc loc;
  char text[40];
} CellToken;

// Splits the string into whitespace-separated tokens with their places.
// Returns the count (more than MAX_TOKENS: counted, not stored), or -1 after
// reporting a token that is not a non-negative integer.
static int split_tokens(Sema *s, const AstTok *str, CellToken *tok) {
  const char *t = str->text;
  uint32_t base = str->loc.begin + 1, i = 0;
  int n = 0;
  while (i < str->len) {
    if (t[i] == ' ' || t[i] == '\t') { i++; continue; }
    uint32_t j = i;
    while (j < str->len && t[j] != ' ' && t[j] != '\t') j++;
    char buf[40];
    snprintf(buf, sizeof buf, "%.*s", (int)(j - i < 32 ? j - i : 32), t + i);
    long v;
    int rc = nao_parse_long(buf, &v);
    NaoLoc loc = {base + i, base + j};
    if (rc < 0 || buf[0] == '-' || buf[0] == '+') {
      diag_error(s->diag, loc, "arch token %d is '%s': a token is a non-negative integer", n + 1, buf);
      return -1;
    }
    if (n < MAX_TOKENS) {
      tok[n].v = v;
      tok[n].loc = loc;
      memcpy(tok[n].text, buf, sizeof buf);
    }
    n++;
    i = j;
  }
  return n;
}

static int token_cell(Sema *s, const AstCell *c, CellKind k) {
  if (c->tokens.bad) return 0;
  CellToken tok[MAX_TOKENS];
  int n = split_tokens(s, &c->tokens, tok);
  if (n < 0) return 0;
  if (n == 0 || n % 4 || n > MAX_TOKENS) {
    diag_error(s->diag, c->tokens.loc,
               "%d arch tokens %s: a cell needs 4 per node (x_in x_op y_in y_op) and 1 to %d nodes, "
               "e.g. 20 tokens for 5 nodes",
               n, n % 4 ? "do not make whole nodes" : n ? "are too many" : "are not a cell", NAO_MAX_NODES);
    return 0;
  }
  static const char *const role[4] = {"first input", "first op", "second input", "second op"};
  int ok = 1, nb = n / 4;
  NetCell *cell = &s->spec->cell[k];
  for (int b = 0; b < nb; b++) {
    const CellToken *t = &tok[4 * b];
    char err[256];
    for (int r = 0; r < 4; r++) {
      if (r % 2 == 0 && input_problem(t[r].v, t[r].text, b + 2, nb, err, sizeof err)) {
        diag_error(s->diag, t[r].loc, "arch token %d (node %d, %s): %s", 4 * b + r + 1, b + 2, role[r], err);
        ok = 0;
      } else if (r % 2 == 1 && (t[r].v >= NAO_OP_COUNT || !nao_op_info((int)t[r].v))) {
        diag_error(s->diag, t[r].loc,
                   "arch token %d (node %d, %s): op id %s is out of range; op ids are 0 to %d "
                   "(0-4: the 5-op vocabulary, 5-15: the 11-op vocabulary)",
                   4 * b + r + 1, b + 2, role[r], t[r].text, NAO_OP_COUNT - 1);
        ok = 0;
      }
    }
    if (ok) cell->node[b] = (NetNode){(int)t[0].v, (int)t[1].v, (int)t[2].v, (int)t[3].v};
    s->locs->cell[k].node[b] = nao_loc_span(t[0].loc, t[3].loc);
    for (int j = 0; j < 2; j++) {
      s->locs->cell[k].input[b][j] = t[2 * j].loc;
      s->locs->cell[k].op[b][j] = t[2 * j + 1].loc;
    }
  }
  cell->n_nodes = nb;
  return ok;
}

void sema_cell(Sema *s, const AstCell *c, CellKind kind) {
  s->locs->cell[kind].cell = nao_loc_span(c->keyword, c->kind.loc);
  s->locs->cell[kind].body = c->form == AST_CELL_TOKENS ? c->tokens.loc : nao_loc_span(c->open, c->loc);
  s->cell_ok[kind] = c->form == AST_CELL_TOKENS ? token_cell(s, c, kind) : node_cell(s, c, kind);
}
