// runtime/netbuild.c — NetSpec -> train / eval graphs and plans (netbuild.h).
//
// Invariants: both graphs are lowered against the same ParamTable, the train
// graph first, so parameter indices, names and offsets are those of the
// state_dict order whatever graphs are built; a failed build leaves nb empty.
#include "runtime/netbuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/lower.h"
#include "compiler/util.h"

void netbuild_options_default(NetBuildOptions *o) {
  memset(o, 0, sizeof *o);
  o->train = o->train_grad = o->train_loss = 1;
  o->eval = o->eval_loss = 1;
  o->plan_reuse = 1;
  o->aux_weight = o->drop_path_keep = o->dropout_keep = -1;
}

int netbuild_apply_overrides(NetSpec *ns, const NetBuildOptions *o, char *err, size_t errlen) {
  if (o->aux_weight >= 0) ns->aux_weight = o->aux_weight;
  if (o->drop_path_keep >= 0) ns->drop_path_keep = o->drop_path_keep;
  if (o->dropout_keep >= 0) ns->dropout_keep = o->dropout_keep;
  if (!(ns->dropout_keep > 0 && ns->dropout_keep <= 1)) {
    snprintf(err, errlen, "dropout keep probability %g is out of range (0, 1]", ns->dropout_keep);
    return -1;
  }
  if (!(ns->drop_path_keep > 0 && ns->drop_path_keep <= 1)) {
    snprintf(err, errlen, "drop-path keep probability %g is out of range (0, 1]", ns->drop_path_keep);
    return -1;
  }
  if (!(ns->aux_weight >= 0 && ns->aux_weight < 1e6)) {
    snprintf(err, errlen, "auxiliary loss weight %g is out of range [0, 1e6)", ns->aux_weight);
    return -1;
  }
  return 0;
}

// Lowers, makes concat views, differentiates (train_grad) and plans one graph.
static int build_graph(NetBuild *nb, const NetBuildOptions *o, IrMode mode, int loss, int grad,
                       float smoothing, IrGraph *g, Plan *p, char *err, size_t errlen) {
  LowerOptions lo;
  lower_options_init(&lo, mode);
  lo.with_loss = loss || grad;
  lo.label_smoothing = smoothing;
  lo.bn_batch_stats = mode == IR_MODE_EVAL && g == &nb->eval && o->eval_bn_batch_stats;
  ir_init(g, &nb->params, mode);
  char why[400];
  const char *what = "lowering";
  int rc = o->ws ? lower_ws_network(&nb->spec, &lo, &nb->params, g, why, sizeof why)
                 : lower_network(&nb->spec, &lo, &nb->params, g, why, sizeof why);
  if (rc == 0) what = "concat views", rc = ir_concat_to_views(g, why, sizeof why) < 0 ? -1 : 0;
  if (rc == 0 && grad) what = "autodiff", rc = ir_autodiff(g, why, sizeof why);
  PlanOptions po = {o->plan_reuse};
  if (rc == 0) what = "plan", rc = plan_build(g, &po, p, why, sizeof why);
  if (rc != 0)
    snprintf(err, errlen, "%s graph: %s: %s", mode == IR_MODE_TRAIN ? "training" : "evaluation",
             what, why);
  return rc;
}

int netbuild_create(const NetSpec *ns, const NetBuildOptions *o, NetBuild *nb, char *err,
                    size_t errlen) {
  memset(nb, 0, sizeof *nb);
  nb->spec = *ns;
  params_init(&nb->params);
  if (netbuild_apply_overrides(&nb->spec, o, err, errlen) != 0) return -1;
  // Declaring first fixes the table (state_dict order) before any graph.
  char why[400];
  int drc = o->ws ? lower_ws_declare_params(&nb->spec, &nb->params, why, sizeof why)
                  : lower_declare_params(&nb->spec, &nb->params, why, sizeof why);
  if (drc != 0) {
    snprintf(err, errlen, "%s", why);
    netbuild_free(nb);
    return -1;
  }
  int rc = 0;
  if (o->train) {
    nb->has_train = 1;
    rc = build_graph(nb, o, o->train_bn_eval ? IR_MODE_EVAL : IR_MODE_TRAIN, o->train_loss, o->train_grad,
                     o->label_smoothing, &nb->train, &nb->train_plan, err, errlen);
  }
  if (rc == 0 && o->eval) {
    nb->has_eval = 1;
    rc = build_graph(nb, o, IR_MODE_EVAL, o->eval_loss, o->eval_grad, 0.0f, &nb->eval, &nb->eval_plan,
                     err, errlen);
  }
  if (rc != 0) {
    netbuild_free(nb);
    return -1;
  }
  nb->grad_written = xcalloc((size_t)nb->params.n + 1, 1);
  if (nb->has_train && o->train_grad) ir_grad_params_written(&nb->train, nb->grad_written);
  else if (nb->has_eval && o->eval_grad) ir_grad_params_written(&nb->eval, nb->grad_written);
  return 0;
}

void netbuild_free(NetBuild *nb) {
  if (nb->has_train) {
    plan_free(&nb->train_plan);
    ir_free(&nb->train);
  }
  if (nb->has_eval) {
    plan_free(&nb->eval_plan);
    ir_free(&nb->eval);
  }
  free(nb->grad_written);
  params_free(&nb->params);
  memset(nb, 0, sizeof *nb);
}

int netbuild_mask_nodes(const IrGraph *g, int *out) {
  int n = 0;
  for (int i = 0; i < g->n_fwd_nodes; i++) {
    IrKind k = g->nodes[i].kind;
    if (k != IR_DROPOUT && k != IR_DROPPATH) continue;
    if (out) out[n] = i;
    n++;
  }
  return n;
}
