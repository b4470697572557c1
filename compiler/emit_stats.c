// compiler/emit_stats.c — the numbers of `naoc --emit stats` (emit_stats.h).
//
// Everything is measured on lowered graphs, never on a separate formula, so
// the statistics describe exactly what the compiler builds: parameters from
// the ParamTable, MACs from ir_macs() of the EVAL graph, activation bytes from
// the tensors of the TRAIN graph.
#include "compiler/emit_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/ir.h"
#include "compiler/lower.h"
#include "compiler/params.h"
#include "compiler/plan.h"

static int forward_written(const IrGraph *g, int t) {
  int p = g->tensors[t].producer;
  return p >= 0 && p < g->n_fwd_nodes && g->nodes[p].kind != IR_INPUT;
}

// Views are counted in their base, which counts when it or one of its views
// is written by a forward node.
static long long activation_bytes(const IrGraph *g) {
  char *count = xcalloc((size_t)g->n_tensors + 1, 1);
  for (int t = 0; t < g->n_tensors; t++) {
    int base = g->tensors[t].view_of >= 0 ? g->tensors[t].view_of : t;
    if (forward_written(g, t)) count[base] = 1;
  }
  long long bytes = 0;
  for (int t = 0; t < g->n_tensors; t++) {
    const IrTensor *x = &g->tensors[t];
    if (count[t] && x->kind == IR_T_ACT && x->view_of < 0)
      bytes += (long long)ir_tensor_numel(x) * (long long)sizeof(float);
  }
  free(count);
  return bytes;
}

static int lower_mode(const NetSpec *ns, IrMode mode, ParamTable *pt, IrGraph *g, char *err,
                      size_t errlen) {
  LowerOptions opt;
  lower_options_init(&opt, mode);
  return lower_network(ns, &opt, pt, g, err, errlen);
}

// The arena of the graph's plan, per image: what the runtime allocates. The
// training graph gets its backward pass first, as the trainer builds it.
static int arena_bytes(IrGraph *g, int backward, long long *bytes, int *steps, char *err,
                       size_t errlen) {
  if (ir_concat_to_views(g, err, errlen) < 0) return -1;
  if (backward && ir_autodiff(g, err, errlen) < 0) return -1;
  Plan plan;
  PlanOptions po = {.reuse = 1};
  if (plan_build(g, &po, &plan, err, errlen) != 0) return -1;
  PlanStats ps;
  plan_stats(g, &plan, &ps);
  *bytes = (long long)ps.arena_bytes_per_image;
  if (steps) *steps = ps.n_steps;
  plan_free(&plan);
  return 0;
}

int stats_compute(const NetSpec *ns, NetStats *st, char *err, size_t errlen) {
  memset(st, 0, sizeof *st);
  ParamTable pt;
  params_init(&pt);
  IrGraph eval, train;
  ir_init(&eval, &pt, IR_MODE_EVAL);
  ir_init(&train, &pt, IR_MODE_TRAIN);
  int rc = lower_mode(ns, IR_MODE_EVAL, &pt, &eval, err, errlen);
  if (rc == 0) rc = lower_mode(ns, IR_MODE_TRAIN, &pt, &train, err, errlen);
  if (rc == 0) {
    st->params = (long long)params_count(&pt, 1);
    st->params_no_aux = (long long)params_count(&pt, 0);
    st->buffers = (long long)pt.n_buffer;
    st->macs = ir_macs(&eval, 1);
    st->activation_bytes = activation_bytes(&train);
    st->cells = 3 * ns->layers + 2;
    st->eval_nodes = eval.n_fwd_nodes;
    st->train_nodes = train.n_fwd_nodes;
    rc = arena_bytes(&train, 1, &st->train_arena_bytes, &st->train_steps, err, errlen);
    if (rc == 0) rc = arena_bytes(&eval, 0, &st->eval_arena_bytes, NULL, err, errlen);
  }
  ir_free(&train);
  ir_free(&eval);
  params_free(&pt);
  return rc;
}

static void json_string(StrBuf *out, const char *s) {
  sb_append(out, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      sb_printf(out, "\\%c", *p);
    else if (*p < 0x20)
      sb_printf(out, "\\u%04x", *p);
    else
      sb_appendn(out, (const char *)p, 1);
  }
  sb_append(out, "\"");
}

int emit_stats(const NetSpec *ns, StrBuf *out, char *err, size_t errlen) {
  NetStats st;
  if (stats_compute(ns, &st, err, errlen) != 0) return -1;
  const DatasetInfo *di = dataset_info(ns->dataset);
  sb_append(out, "{\n  \"name\": ");
  json_string(out, ns->name);
  sb_append(out, ",\n  \"dataset\": ");
  json_string(out, di ? di->name : "none");
  sb_printf(out, ",\n  \"input\": [%d, %d, %d],\n", ns->in_channels, ns->in_height, ns->in_width);
  sb_printf(out, "  \"classes\": %d,\n", ns->classes);
  sb_printf(out, "  \"channels\": %d,\n  \"layers\": %d,\n  \"nodes\": %d,\n  \"cells\": %d,\n",
            ns->channels, ns->layers, ns->nodes, st.cells);
  sb_printf(out, "  \"params\": %lld,\n  \"params_no_aux\": %lld,\n", st.params, st.params_no_aux);
  sb_printf(out, "  \"bn_buffers\": %lld,\n", st.buffers);
  sb_printf(out, "  \"macs\": %lld,\n  \"activation_bytes\": %lld,\n", st.macs,
            st.activation_bytes);
  sb_printf(out, "  \"train_arena_bytes_per_image\": %lld,\n", st.train_arena_bytes);
  sb_printf(out, "  \"eval_arena_bytes_per_image\": %lld\n}\n", st.eval_arena_bytes);
  return 0;
}
