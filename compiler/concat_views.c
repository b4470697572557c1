// compiler/concat_views.c — concatenation without copies (autodiff.h).
//
// A concat input that nothing else in the forward pass reads becomes a channel
// view of the concat's output: its producer writes straight into the slice.
// Every other input (read elsewhere too, the graph input, a view already, an
// output of the graph, written by several nodes, or taken twice) gets a copy
// node, IR_ACCUM without the accumulate bit, from the tensor into a new slice
// view, inserted just before the concat. The concat is then "in place"
// (ir_concat_in_place): each input already is the slice it would copy, so
// executing it changes nothing and the plan leaves it out of the steps. It
// stays in the IR, where autodiff and readers still see the concatenation.
//
// Insertion renumbers nodes: the pass rebuilds the node array in the old order
// with the copies added and rewrites every node index the graph stores (tensor
// producers, backward nodes' fwd, n_fwd_nodes). Views stay flattened: when a
// tensor that other views already point at (the output of an inner concat)
// becomes a view itself, those views are re-pointed at the new root.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"

int ir_concat_in_place(const IrGraph *g, int node) {
  const IrNode *n = &g->nodes[node];
  if (n->kind != IR_CONCAT) return 0;
  int root = ir_root(g, n->out[0]);
  int off = ir_root_offset(g, n->out[0]);
  for (int k = 0; k < n->n_in; k++) {
    int t = n->in[k];
    if (g->tensors[t].view_of < 0 || ir_root(g, t) != root || ir_root_offset(g, t) != off)
      return 0;
    off += g->tensors[t].c;
  }
  return 1;
}

typedef struct {
  int before;  // old index of the concat the copy serves
  IrNode node;
} Copy;

typedef struct {
  IrGraph *g;
  int *fwd_readers;  // per tensor: forward nodes reading it (counted per slot)
  int *writers;      // per tensor: nodes writing it (any slot, adds included)
  Copy *copies;
  int n_copies, cap_copies;
} Cv;

static void count_uses(Cv *cv) {
  IrGraph *g = cv->g;
  cv->fwd_readers = xcalloc((size_t)g->n_tensors + 1, sizeof(int));
  cv->writers = xcalloc((size_t)g->n_tensors + 1, sizeof(int));
  for (int i = 0; i < g->n_nodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (i < g->n_fwd_nodes)
      for (int k = 0; k < n->n_in; k++) cv->fwd_readers[n->in[k]]++;
    for (int k = 0; k < n->n_out; k++) cv->writers[n->out[k]]++;
  }
}

static int viewable(const Cv *cv, const IrNode *concat, int k) {
  const IrGraph *g = cv->g;
  int t = concat->in[k];
  const IrTensor *x = &g->tensors[t];
  if (x->kind != IR_T_ACT || x->view_of >= 0 || x->producer < 0) return 0;
  if (t == g->input || t == g->logits || t == g->aux_logits || t == g->loss) return 0;
  const IrNode *p = &g->nodes[x->producer];
  if (p->kind == IR_INPUT || p->kind == IR_LABELS || p->out[0] != t) return 0;
  if (cv->writers[t] != 1 || cv->fwd_readers[t] != 1) return 0;
  return 1;
}

// t becomes channels [off, ...) of root; views of t follow it.
static void make_view(IrGraph *g, int t, int root, int off) {
  for (int u = 0; u < g->n_tensors; u++)
    if (g->tensors[u].view_of == t) {
      g->tensors[u].view_of = root;
      g->tensors[u].chan_offset += off;
    }
  g->tensors[t].view_of = root;
  g->tensors[t].chan_offset = off;
}

static void add_copy(Cv *cv, int concat, int k, int root, int off) {
  IrGraph *g = cv->g;
  IrNode *c = &g->nodes[concat];
  int t = c->in[k];
  char name[IR_NAME_MAX * 2];
  snprintf(name, sizeof name, "%s[c%d:%d]", g->tensors[c->out[0]].name, off,
           off + g->tensors[t].c);
  int v = ir_add_tensor(g, IR_T_ACT, g->tensors[t].c, g->tensors[t].h, g->tensors[t].w, name);
  g->tensors[v].view_of = root;
  g->tensors[v].chan_offset = off;
  if (cv->n_copies == cv->cap_copies) {
    cv->cap_copies = cv->cap_copies ? 2 * cv->cap_copies : 16;
    cv->copies = xrealloc(cv->copies, sizeof *cv->copies * (size_t)cv->cap_copies);
  }
  Copy *cp = &cv->copies[cv->n_copies++];
  memset(cp, 0, sizeof *cp);
  cp->before = concat;
  cp->node.kind = IR_ACCUM;
  memcpy(cp->node.name, c->name, sizeof cp->node.name);
  cp->node.n_in = 1;
  cp->node.in[0] = t;
  cp->node.n_out = 1;
  cp->node.out[0] = v;
  cp->node.fwd = -1;
  cp->node.aux = c->aux;
  c->in[k] = v;
}

static int check_shapes(const IrGraph *g, const IrNode *c, char *err, size_t errlen) {
  const IrTensor *o = &g->tensors[c->out[0]];
  int sum = 0;
  for (int k = 0; k < c->n_in; k++) {
    const IrTensor *x = &g->tensors[c->in[k]];
    if (x->kind != IR_T_ACT || x->h != o->h || x->w != o->w) {
      snprintf(err, errlen, "concat %s: input %s is not an activation of %dx%d", c->name,
               x->name, o->h, o->w);
      return -1;
    }
    sum += x->c;
  }
  if (o->kind != IR_T_ACT || sum != o->c) {
    snprintf(err, errlen, "concat %s: %d input channels for an output of %d", c->name, sum,
             o->c);
    return -1;
  }
  return 0;
}

// Rebuilds the node array with the copies in place, renumbering.
static void insert_copies(Cv *cv) {
  IrGraph *g = cv->g;
  int n_old = g->n_nodes, n_new = n_old + cv->n_copies;
  IrNode *nodes = xmalloc(sizeof *nodes * (size_t)n_new);
  int *map = xmalloc(sizeof(int) * (size_t)n_old);
  int *copy_at = xmalloc(sizeof(int) * (size_t)cv->n_copies);
  int at = 0, c = 0, fwd_added = 0;
  for (int i = 0; i < n_old; i++) {
    for (; c < cv->n_copies && cv->copies[c].before == i; c++) {
      copy_at[c] = at;
      nodes[at++] = cv->copies[c].node;
      if (i < g->n_fwd_nodes) fwd_added++;
    }
    map[i] = at;
    nodes[at++] = g->nodes[i];
    if (i >= g->n_fwd_nodes && nodes[map[i]].fwd >= 0) nodes[map[i]].fwd = map[nodes[map[i]].fwd];
  }
  for (int t = 0; t < g->n_tensors; t++)  // the copies' outputs have no producer yet
    if (g->tensors[t].producer >= 0) g->tensors[t].producer = map[g->tensors[t].producer];
  for (c = 0; c < cv->n_copies; c++) g->tensors[nodes[copy_at[c]].out[0]].producer = copy_at[c];
  free(g->nodes);
  g->nodes = nodes;
  g->n_nodes = g->cap_nodes = n_new;
  g->n_fwd_nodes += fwd_added;
  free(map);
  free(copy_at);
}

int ir_concat_to_views(IrGraph *g, char *err, size_t errlen) {
  if (ir_check_indices(g, err, errlen) < 0) return -1;
  Cv cv;
  memset(&cv, 0, sizeof cv);
  cv.g = g;
  count_uses(&cv);
  int n_views = 0, rc = 0;
  for (int i = 0; i < g->n_fwd_nodes && rc == 0; i++)  // nothing changes unless all are sound
    if (g->nodes[i].kind == IR_CONCAT) rc = check_shapes(g, &g->nodes[i], err, errlen);
  for (int i = 0; i < g->n_fwd_nodes && rc == 0; i++) {
    if (g->nodes[i].kind != IR_CONCAT || ir_concat_in_place(g, i)) continue;
    int root = ir_root(g, g->nodes[i].out[0]);
    int off = ir_root_offset(g, g->nodes[i].out[0]);
    for (int k = 0; k < g->nodes[i].n_in; k++) {
      int t = g->nodes[i].in[k];
      int c = g->tensors[t].c;
      if (viewable(&cv, &g->nodes[i], k)) {
        make_view(g, t, root, off);
        n_views++;
      } else {
        add_copy(&cv, i, k, root, off);
      }
      off += c;
    }
  }
  if (rc == 0 && cv.n_copies) insert_copies(&cv);
  free(cv.fwd_readers);
  free(cv.writers);
  free(cv.copies);
  return rc < 0 ? -1 : n_views;
}
