// compiler/emit_cuda_netcu.c — NetSpec -> net.cu (emit_net_cu, emit_cuda.h).
//
// Builds the graphs exactly as runtime/netbuild.c does (same passes, same
// order, one ParamTable declared first), so that a CUDA program's node indices
// (the dropout / drop-path mask keys: cpu_mask_key(seed, step, node)), tensor
// ids and parameter offsets are those the CPU backend uses for the same file.
#include <stdio.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/emit_cuda.h"
#include "compiler/lower.h"

static int build_graph(const NetSpec *ns, ParamTable *pt, IrMode mode, float smoothing, int grad,
                       IrGraph *g, char *err, size_t errlen) {
  LowerOptions lo;
  lower_options_init(&lo, mode);
  lo.with_loss = 1;
  lo.label_smoothing = smoothing;
  ir_init(g, pt, mode);
  char why[400];
  const char *what = "lowering";
  int rc = lower_network(ns, &lo, pt, g, why, sizeof why);
  if (rc == 0) {
    what = "concat views";
    rc = ir_concat_to_views(g, why, sizeof why) < 0 ? -1 : 0;
  }
  if (rc == 0 && grad) {
    what = "autodiff";
    rc = ir_autodiff(g, why, sizeof why);
  }
  if (rc != 0)
    snprintf(err, errlen, "%s graph: %s: %s", mode == IR_MODE_TRAIN ? "training" : "evaluation",
             what, why);
  return rc;
}

int emit_cuda_lower(const NetSpec *ns, float smoothing, int want_train, ParamTable *pt,
                    IrGraph *train, IrGraph *eval, char *err, size_t errlen) {
  ir_init(train, pt, IR_MODE_TRAIN);
  ir_init(eval, pt, IR_MODE_EVAL);
  char why[400];
  if (lower_declare_params(ns, pt, why, sizeof why)) {
    snprintf(err, errlen, "%s", why);
    return -1;
  }
  int rc = 0;
  if (want_train) rc = build_graph(ns, pt, IR_MODE_TRAIN, smoothing, 1, train, err, errlen);
  if (rc) return -1;
  return build_graph(ns, pt, IR_MODE_EVAL, 0.0f, 0, eval, err, errlen);
}

float emit_cuda_smoothing(const NetSpec *ns, const EmitCudaOptions *opt) {
  if (opt && opt->label_smoothing >= 0.0f) return opt->label_smoothing;
  return ns->dataset == DATASET_IMAGENET ? 0.1f : 0.0f;
}

int emit_net_cu(const NetSpec *ns, const char *source_path, const EmitCudaOptions *opt0,
                StrBuf *out, char *err, size_t errlen) {
  EmitCudaOptions opt;
  if (opt0) opt = *opt0;
  else emit_cuda_defaults(&opt);
  ParamTable pt;
  params_init(&pt);
  IrGraph train, eval;
  int rc = emit_cuda_lower(ns, emit_cuda_smoothing(ns, &opt), opt.train, &pt, &train, &eval, err,
                           errlen);
  if (!rc) {
    CudaNetBuild *b = cuda_net_new(&pt, source_path, &opt);
    if (opt.train) rc = cuda_net_add_graph(b, &train, "train", err, errlen);
    if (!rc && opt.train) cuda_net_add_update(b);
    if (!rc) rc = cuda_net_add_graph(b, &eval, "eval", err, errlen);
    if (!rc) cuda_net_write(b, out);
    cuda_net_free(b);
  }
  ir_free(&train);
  ir_free(&eval);
  params_free(&pt);
  return rc;
}
