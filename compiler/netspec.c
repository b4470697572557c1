// compiler/netspec.c — presets, arch tokens and shape inference of a NetSpec.
//
// The shape rules are the reference implementation's (NAO-SPEC.md §1a): the
// stems, MaybeCalibrateSize, stride 2 on inputs 0/1 of reduction cells, loose
// ends concatenated, FactorizedReduce for loose inputs of reduction cells, and
// the auxiliary heads. Sizes must stay exact: every stride-2 reduction inside
// the cells needs an even height and width.
#include "compiler/netspec.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/ops.h"

// ---------------------------------------------------------------- presets

static const DatasetInfo datasets[] = {
    {DATASET_CIFAR10, "cifar10", 3, 32, 32, 10, STEM_CIFAR},
    {DATASET_IMAGENET, "imagenet", 3, 224, 224, 1000, STEM_IMAGENET},
    {DATASET_FASHION_MNIST, "fashion-mnist", 1, 28, 28, 10, STEM_CIFAR},
};

const DatasetInfo *dataset_info(DatasetPreset id) {
  for (size_t i = 0; i < sizeof datasets / sizeof datasets[0]; i++)
    if (datasets[i].id == id) return &datasets[i];
  return NULL;
}

const DatasetInfo *dataset_by_name(const char *name) {
  for (size_t i = 0; i < sizeof datasets / sizeof datasets[0]; i++)
    if (strcmp(datasets[i].name, name) == 0) return &datasets[i];
  return NULL;
}

const char *stem_name(StemKind stem) { return stem == STEM_IMAGENET ? "imagenet" : "cifar"; }

void netspec_init(NetSpec *ns) {
  memset(ns, 0, sizeof *ns);
  netspec_apply_dataset(ns, DATASET_CIFAR10);
  ns->channels = 36;
  ns->layers = 6;
  ns->nodes = 5;
  ns->aux_weight = 0.4;
  ns->drop_path_keep = 0.8;
  ns->dropout_keep = 0.6;
}

void netspec_apply_dataset(NetSpec *ns, DatasetPreset d) {
  const DatasetInfo *di = dataset_info(d);
  ns->dataset = d;
  if (!di) return;
  ns->in_channels = di->in_channels;
  ns->in_height = di->in_height;
  ns->in_width = di->in_width;
  ns->classes = di->classes;
  ns->stem = di->stem;
}

// ---------------------------------------------------------------- arch tokens

int netcell_check(const NetCell *cell, char *err, size_t errlen) {
  if (cell->n_nodes < 1 || cell->n_nodes > NAO_MAX_NODES) {
    snprintf(err, errlen, "a cell needs 1 to %d nodes, not %d", NAO_MAX_NODES, cell->n_nodes);
    return -1;
  }
  for (int b = 0; b < cell->n_nodes; b++) {
    const NetNode *n = &cell->node[b];
    int ins[2] = {n->x_in, n->y_in}, ops[2] = {n->x_op, n->y_op};
    for (int k = 0; k < 2; k++) {
      if (ins[k] < 0 || ins[k] > b + 1) {
        snprintf(err, errlen, "node %d, %s branch: input %d is out of range (0 to %d)", b + 2,
                 k ? "second" : "first", ins[k], b + 1);
        return -1;
      }
      if (!nao_op_info(ops[k])) {
        snprintf(err, errlen, "node %d, %s branch: op id %d is out of range (0 to %d)", b + 2,
                 k ? "second" : "first", ops[k], NAO_OP_COUNT - 1);
        return -1;
      }
    }
  }
  return 0;
}

int netspec_parse_arch(NetSpec *ns, const char *text, char *err, size_t errlen) {
  int tok[4 * 2 * NAO_MAX_NODES];
  int n = 0;
  const char *p = text;
  for (;;) {
    while (isspace((unsigned char)*p)) p++;
    if (!*p) break;
    if (!isdigit((unsigned char)*p)) {
      snprintf(err, errlen, "token %d: expected a non-negative integer, found '%c'", n + 1, *p);
      return -1;
    }
    errno = 0;
    char *end;
    long v = strtol(p, &end, 10);
    if (errno || v > 1000000) {
      snprintf(err, errlen, "token %d: number out of range", n + 1);
      return -1;
    }
    if (*end && !isspace((unsigned char)*end)) {
      snprintf(err, errlen, "token %d: expected a non-negative integer", n + 1);
      return -1;
    }
    if (n == (int)(sizeof tok / sizeof tok[0])) {
      snprintf(err, errlen, "more than %d tokens (at most %d nodes per cell)", n, NAO_MAX_NODES);
      return -1;
    }
    tok[n++] = (int)v;
    p = end;
  }
  if (n == 0 || n % 8 != 0) {
    snprintf(err, errlen, "%d tokens: an arch needs 8 per node (4 per node and cell), e.g. 40 for B=5", n);
    return -1;
  }
  int b = n / 8;
  for (int c = 0; c < 2; c++) {
    NetCell *cell = &ns->cell[c];
    cell->n_nodes = b;
    for (int i = 0; i < b; i++) {
      const int *t = &tok[c * 4 * b + 4 * i];
      cell->node[i] = (NetNode){t[0], t[1], t[2], t[3]};
    }
    char sub[160];
    if (netcell_check(cell, sub, sizeof sub) != 0) {
      snprintf(err, errlen, "%s cell: %s", c ? "reduction" : "normal", sub);
      return -1;
    }
  }
  ns->nodes = b;
  return 0;
}

void netspec_format_arch(const NetSpec *ns, char *out, size_t outlen) {
  size_t len = 0;
  out[0] = '\0';
  for (int c = 0; c < 2; c++)
    for (int i = 0; i < ns->cell[c].n_nodes; i++) {
      const NetNode *n = &ns->cell[c].node[i];
      int w = snprintf(out + len, len < outlen ? outlen - len : 0, "%s%d %d %d %d",
                       len ? " " : "", n->x_in, n->x_op, n->y_in, n->y_op);
      if (w > 0) len += (size_t)w;
    }
}

int netcell_loose_ends(const NetCell *cell, int ids[NAO_MAX_STATES]) {
  int used[NAO_MAX_STATES] = {0};
  for (int b = 0; b < cell->n_nodes; b++) {
    used[cell->node[b].x_in]++;
    used[cell->node[b].y_in]++;
  }
  int n = 0;
  for (int id = 0; id < cell->n_nodes + 2; id++)
    if (!used[id]) ids[n++] = id;
  return n;
}

// ---------------------------------------------------------------- shape inference

static int conv_out(int size, int k, int stride, int pad) { return (size + 2 * pad - k) / stride + 1; }

static LayoutError halve(NetShape *s, int cell, const char *what, char *err, size_t errlen) {
  if (s->h % 2 || s->w % 2) {
    snprintf(err, errlen, "cell %d (reduction) gets %dx%d %s: a stride-2 reduction needs an even height and width",
             cell, s->h, s->w, what);
    return LAYOUT_ODD_SIZE;
  }
  s->h /= 2;
  s->w /= 2;
  return LAYOUT_OK;
}

static LayoutError layout_stem(const NetSpec *ns, NetLayout *L, char *err, size_t errlen) {
  L->input = (NetShape){ns->in_height, ns->in_width, ns->in_channels};
  if (ns->stem == STEM_CIFAR) {
    L->stem0 = L->stem1 = (NetShape){ns->in_height, ns->in_width, 3 * ns->channels};
    return LAYOUT_OK;
  }
  if (ns->channels % 2) {
    snprintf(err, errlen, "the ImageNet stem needs an even channel count (it starts with F/2 = %d.5)",
             ns->channels / 2);
    return LAYOUT_ODD_CHANNELS;
  }
  int h = conv_out(conv_out(ns->in_height, 3, 2, 1), 3, 2, 1);
  int w = conv_out(conv_out(ns->in_width, 3, 2, 1), 3, 2, 1);
  L->stem0 = (NetShape){h, w, ns->channels};
  L->stem1 = (NetShape){conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1), ns->channels};
  if (L->stem0.h != 2 * L->stem1.h || L->stem0.w != 2 * L->stem1.w) {
    snprintf(err, errlen, "the ImageNet stem makes %dx%d and %dx%d of a %dx%d input: cell 0 needs the first to be twice the second (use a multiple of 8)",
             L->stem0.h, L->stem0.w, L->stem1.h, L->stem1.w, ns->in_height, ns->in_width);
    return LAYOUT_ODD_SIZE;
  }
  return LAYOUT_OK;
}

static int cell_channels(const NetSpec *ns, int i) {
  int n = ns->layers;
  if (i < n) return ns->channels;
  if (i <= 2 * n) return 2 * ns->channels;
  return 4 * ns->channels;
}

static LayoutError layout_cell(const NetSpec *ns, NetCellLayout *cl, NetShape s0, NetShape s1,
                               char *err, size_t errlen) {
  int i = cl->index;
  cl->reduction = i == ns->layers || i == 2 * ns->layers + 1;
  cl->c = cell_channels(ns, i);
  cl->in0 = s0;
  cl->in1 = s1;
  // MaybeCalibrateSize: s0 is brought to s1's size and both to c channels.
  if (s0.h != s1.h || s0.w != s1.w) {
    if (s0.h != 2 * s1.h || s0.w != 2 * s1.w) {
      snprintf(err, errlen, "cell %d gets inputs of %dx%d and %dx%d: the first must be the same size or twice the second",
               i, s0.h, s0.w, s1.h, s1.w);
      return LAYOUT_ODD_SIZE;
    }
    if (cl->c % 2) {
      snprintf(err, errlen, "cell %d brings its first input from %dx%d to %dx%d with a factorized reduction, which needs an even channel count, not %d",
               i, s0.h, s0.w, s1.h, s1.w, cl->c);
      return LAYOUT_ODD_CHANNELS;
    }
    cl->calib0 = CALIB_FR;
  } else {
    cl->calib0 = s0.c != cl->c ? CALIB_CONV : CALIB_NONE;
  }
  cl->calib1 = s1.c != cl->c ? CALIB_CONV : CALIB_NONE;
  cl->state = (NetShape){s1.h, s1.w, cl->c};

  const NetCell *cell = &ns->cell[cl->reduction ? CELL_REDUCTION : CELL_NORMAL];
  cl->n_concat = netcell_loose_ends(cell, cl->concat);
  NetShape out = cl->state;
  if (cl->reduction) {
    LayoutError e = halve(&out, i, "inputs", err, errlen);
    if (e) return e;
    if (cl->c % 2) {
      snprintf(err, errlen, "cell %d (reduction) needs an even channel count for its factorized reductions, not %d",
               i, cl->c);
      return LAYOUT_ODD_CHANNELS;
    }
  }
  if (out.h < 1 || out.w < 1) {
    snprintf(err, errlen, "cell %d: the input is too small (%dx%d)", i, out.h, out.w);
    return LAYOUT_TOO_SMALL;
  }
  for (int k = 0; k < cl->n_concat; k++) cl->concat_fr[k] = cl->reduction && cl->concat[k] < 2;
  out.c = cl->c * cl->n_concat;
  cl->out = out;
  return LAYOUT_OK;
}

static LayoutError layout_aux(const NetSpec *ns, NetLayout *L, char *err, size_t errlen) {
  L->has_aux = ns->aux_weight > 0;
  L->aux_cell = 2 * ns->layers + 1;
  if (!L->has_aux) return LAYOUT_OK;
  NetShape in = L->cell[L->aux_cell].out;
  L->aux_in = in;
  // The CIFAR head pools 5x5 with stride 3 (8x8 -> 2x2); on 7x7 (Fashion-MNIST)
  // and in the ImageNet head the stride is 2 (NAO-SPEC.md, decision O4).
  L->aux_pool_stride = ns->stem == STEM_IMAGENET || (in.h == 7 && in.w == 7) ? 2 : 3;
  int ph = in.h >= 5 ? (in.h - 5) / L->aux_pool_stride + 1 : 0;
  int pw = in.w >= 5 ? (in.w - 5) / L->aux_pool_stride + 1 : 0;
  if (ph != 2 || pw != 2) {
    snprintf(err, errlen, "the auxiliary head after cell %d gets %dx%d: its 5x5 pool with stride %d must give 2x2 (it gives %dx%d); use an input where cell %d is 7x7 or 8x8, or no auxiliary head",
             L->aux_cell, in.h, in.w, L->aux_pool_stride, ph, pw, L->aux_cell);
    return LAYOUT_AUX_SIZE;
  }
  return LAYOUT_OK;
}

LayoutError netspec_layout(const NetSpec *ns, NetLayout *L, char *err, size_t errlen) {
  memset(L, 0, sizeof *L);
  for (int c = 0; c < 2; c++) {
    char sub[160];
    if (netcell_check(&ns->cell[c], sub, sizeof sub) != 0) {
      snprintf(err, errlen, "%s cell: %s", c ? "reduction" : "normal", sub);
      return LAYOUT_BAD_CELL;
    }
  }
  LayoutError e = layout_stem(ns, L, err, errlen);
  if (e) return e;
  L->n_cells = 3 * ns->layers + 2;
  NetShape s0 = L->stem0, s1 = L->stem1;
  for (int i = 0; i < L->n_cells; i++) {
    L->cell[i].index = i;
    e = layout_cell(ns, &L->cell[i], s0, s1, err, errlen);
    if (e) return e;
    s0 = s1;
    s1 = L->cell[i].out;
  }
  L->final = s1;
  return layout_aux(ns, L, err, errlen);
}
