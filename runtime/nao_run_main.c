// runtime/nao_run_main.c — nao-run: forward, loss and gradients of a network on
// tensors read from a safetensors file, written to one (docs/training.md).
//
//   nao-run NET.nao --weights W.safetensors --input X.safetensors -o OUT.safetensors
//           [--train] [--grad] [--label-smoothing E] [--step T] [--total-steps T]
//           [--seed S] [--dump-masks] [--threads N]
//           [--sgd --lr X --momentum M --weight-decay W --grad-clip C]
//
// X holds `input` (N,C,H,W) F32 and, for a loss, `labels` (N) I64 or I32. OUT
// holds `logits` (N,K); `aux_logits` in --train mode with an auxiliary head;
// with labels `loss` [1] (CE of the logits + aux weight x CE of the aux
// logits, smoothed by --label-smoothing); with --grad `grad.NAME` for every
// trainable parameter (0 where the graph does not reach it, e.g. the auxiliary
// head in eval mode); with --dump-masks `mask.NODE` for every dropout and
// drop-path node (0 or 1/keep); in --train mode the BN running statistics
// after the run under their names; with --sgd one optimizer step as nao-train
// takes it (optim.h): the new parameters under their names,
// `optimizer.momentum.NAME`, and `grad_norm` [1] (before clipping; the grad.*
// tensors are the unclipped gradients). W is read as a checkpoint's state:
// parameters and buffers under the reference's names (num_batches_tracked
// ignored), and for --sgd the momentum buffers `optimizer.momentum.NAME` it
// holds (a parameter without one takes a first step).
//
// Exit status: 0 ok, 1 bad input (file, tensor, network), 2 bad usage,
// 70 internal error.
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/frontend.h"
#include "compiler/util.h"
#include "runtime/checkpoint.h"
#include "runtime/exec_cpu.h"
#include "runtime/model_state.h"
#include "runtime/netbuild.h"
#include "runtime/optim.h"
#include "runtime/safetensors.h"

typedef struct {
  const char *net, *weights, *input, *output;
  int train, grad, dump_masks, sgd, threads;
  double smoothing;
  long long step, total_steps;
  unsigned long long seed;
  SgdHyper hyper;
} RunArgs;

static void usage(FILE *f) {
  fprintf(f,
          "usage: nao-run NET.nao --weights W.safetensors --input X.safetensors -o OUT.safetensors\n"
          "               [--train] [--grad] [--label-smoothing E] [--step T] [--total-steps T]\n"
          "               [--seed S] [--dump-masks] [--threads N]\n"
          "               [--sgd [--lr X] [--momentum M] [--weight-decay W] [--grad-clip C]]\n"
          "  --train           training mode: batch-statistics BN (running statistics updated),\n"
          "                    auxiliary head, dropout and drop-path as the network sets them\n"
          "  --grad            gradients of the loss (X must hold labels)\n"
          "  --label-smoothing epsilon of the cross-entropy (default 0)\n"
          "  --step T          global step t of the drop-path schedule and the masks (default 0)\n"
          "  --total-steps T   T of the drop-path schedule (default 0: its final keep)\n"
          "  --seed S          run seed of the dropout and drop-path masks (default 0)\n"
          "  --dump-masks      write every dropout / drop-path mask as mask.NODE\n"
          "  --sgd             then one SGD step (implies --grad); defaults lr 0.025, momentum\n"
          "                    0.9, weight decay 3e-4, clip 5\n");
}

static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nao-run: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n(nao-run --help for the options)\n");
  va_end(ap);
  return NAO_EXIT_USAGE;
}

static int parse_num(const char *opt, const char *val, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = val ? strtod(val, &end) : 0;
  if (!val || errno || end == val || *end || !isfinite(v) || v < lo || v > hi) {
    fprintf(stderr, "nao-run: %s: '%s' is not a number in [%g, %g]\n(nao-run --help for the options)\n",
            opt, val ? val : "(missing)", lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

// Returns -1 when done parsing, else an exit status.
static int parse_args(int argc, char **argv, RunArgs *a) {
  memset(a, 0, sizeof *a);
  a->hyper = (SgdHyper){0.025, 0.9, 3e-4, 5.0};
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    double d;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) return usage(stdout), NAO_EXIT_OK;
    if (!strcmp(o, "--train")) a->train = 1;
    else if (!strcmp(o, "--grad")) a->grad = 1;
    else if (!strcmp(o, "--dump-masks")) a->dump_masks = 1;
    else if (!strcmp(o, "--sgd")) a->sgd = a->grad = 1;
    else if (!strcmp(o, "--weights") || !strcmp(o, "--input") || !strcmp(o, "-o")) {
      if (!v) return bad_usage("%s needs a file name", o);
      *(o[2] == 'w' ? &a->weights : o[2] == 'i' ? &a->input : &a->output) = v;
      i++;
    } else if (o[0] == '-' && o[1] == '-' && v) {
      static const struct { const char *name; double lo, hi; } nums[] = {
          {"--label-smoothing", 0, 0.999}, {"--step", 0, 1e15}, {"--total-steps", 0, 1e15},
          {"--seed", 0, 1.8e19}, {"--threads", 0, 1024}, {"--lr", 0, 1e3},
          {"--momentum", 0, 1}, {"--weight-decay", 0, 1}, {"--grad-clip", 0, 1e9}};
      int k = 0, n = (int)(sizeof nums / sizeof nums[0]);
      while (k < n && strcmp(nums[k].name, o)) k++;
      if (k == n) return bad_usage("unknown option '%s'", o);
      if (parse_num(o, v, nums[k].lo, nums[k].hi, &d) != 0) return NAO_EXIT_USAGE;
      double *dst[] = {&a->smoothing, NULL, NULL, NULL, NULL, &a->hyper.lr, &a->hyper.momentum,
                       &a->hyper.weight_decay, &a->hyper.grad_clip};
      if (dst[k]) *dst[k] = d;
      else if (k == 1) a->step = (long long)d;
      else if (k == 2) a->total_steps = (long long)d;
      else if (k == 3) a->seed = strtoull(v, NULL, 10);
      else a->threads = (int)d;
      i++;
    } else if (o[0] == '-') {
      return bad_usage("unknown option '%s'%s", o, v ? "" : " (or its value is missing)");
    } else if (!a->net) {
      a->net = o;
    } else {
      return bad_usage("unexpected argument '%s' (the network is '%s')", o, a->net);
    }
  }
  if (!a->net) return bad_usage("no network file given");
  if (!a->weights || !a->input || !a->output)
    return bad_usage("--weights, --input and -o are required");
  return -1;
}

// ---------------------------------------------------------------- input

typedef struct {
  SafeTensors *st;
  const StTensor *x;
  int n;
  int32_t *labels;  // NULL when X has none
} RunInput;

static int read_input(const RunArgs *a, const NetSpec *ns, RunInput *in) {
  char err[512];
  memset(in, 0, sizeof *in);
  if (st_open(a->input, &in->st, err, sizeof err) != 0) {
    fprintf(stderr, "nao-run: %s\n", err);
    return -1;
  }
  const StTensor *x = st_find(in->st, "input");
  if (!x || x->dtype != ST_F32 || x->ndim != 4 || x->shape[0] < 1 || x->shape[0] > (1 << 20) ||
      x->shape[1] != ns->in_channels || x->shape[2] != ns->in_height || x->shape[3] != ns->in_width) {
    fprintf(stderr, "nao-run: %s: tensor 'input' must be F32 (N, %d, %d, %d) with 1 <= N <= 2^20%s\n",
            a->input, ns->in_channels, ns->in_height, ns->in_width, x ? "" : " (it is missing)");
    return -1;
  }
  in->x = x;
  in->n = (int)x->shape[0];
  const StTensor *y = st_find(in->st, "labels");
  if (!y) {
    if (!a->grad) return 0;
    fprintf(stderr, "nao-run: %s: --grad needs a tensor 'labels' (N) of I64 or I32\n", a->input);
    return -1;
  }
  if ((y->dtype != ST_I64 && y->dtype != ST_I32) || y->ndim != 1 || y->shape[0] != in->n) {
    fprintf(stderr, "nao-run: %s: tensor 'labels' must be I64 or I32 of shape [%d]\n", a->input,
            in->n);
    return -1;
  }
  in->labels = xmalloc((size_t)in->n * sizeof(int32_t));
  for (int i = 0; i < in->n; i++) {
    int64_t v = y->dtype == ST_I64 ? ((const int64_t *)y->data)[i] : ((const int32_t *)y->data)[i];
    if (v < 0 || v >= ns->classes) {
      fprintf(stderr, "nao-run: %s: labels[%d] = %lld is outside [0, %d)\n", a->input, i,
              (long long)v, ns->classes);
      return -1;
    }
    in->labels[i] = (int32_t)v;
  }
  return 0;
}

// ---------------------------------------------------------------- output

typedef struct {
  StTensor *t;
  int n, cap;
  Arena names;
  void **owned;  // copies to free
  int n_owned;
} OutSet;

static float *out_add(OutSet *o, const char *name, int ndim, const int64_t *shape) {
  if (o->n == o->cap) {
    o->cap = o->cap ? 2 * o->cap : 64;
    o->t = xrealloc(o->t, (size_t)o->cap * sizeof *o->t);
    o->owned = xrealloc(o->owned, (size_t)o->cap * sizeof *o->owned);
  }
  StTensor *t = &o->t[o->n++];
  memset(t, 0, sizeof *t);
  t->name = arena_strdup(&o->names, name);
  t->dtype = ST_F32;
  t->ndim = ndim;
  memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
  t->nbytes = (size_t)st_numel(ndim, shape) * sizeof(float);
  float *data = xcalloc(t->nbytes ? t->nbytes : 1, 1);
  t->data = data;
  o->owned[o->n_owned++] = data;
  return data;
}

static void out_free(OutSet *o) {
  for (int i = 0; i < o->n_owned; i++) free(o->owned[i]);
  free(o->owned);
  free(o->t);
  arena_free(&o->names);
}

static void out_entry(OutSet *o, const char *prefix, const ParamInfo *p, const float *src) {
  int64_t shape[4];
  for (int d = 0; d < p->ndim; d++) shape[d] = p->dims[d];
  char name[PARAM_NAME_MAX + 32];
  snprintf(name, sizeof name, "%s%s", prefix, p->name);
  memcpy(out_add(o, name, p->ndim, shape), src, p->numel * sizeof(float));
}

static void out_tensor(OutSet *o, CpuExec *ex, const IrGraph *g, int t, int n, const char *name) {
  const IrTensor *it = &g->tensors[t];
  int64_t shape[4] = {n, it->c, it->h, it->w};
  int ndim = 4;
  if (it->kind == IR_T_SCALAR) shape[0] = 1, ndim = 1;
  else if (it->h == 1 && it->w == 1 && (t == g->logits || t == g->aux_logits)) ndim = 2;
  cpu_exec_read(ex, t, n, out_add(o, name, ndim, shape));
}

// ---------------------------------------------------------------- run

typedef struct {
  NetSpec ns;
  NetBuild nb;
  ModelState m;
  RunInput in;
  CpuExec *ex;
  float *grads;
  OutSet out;
} RunCtx;

static int build(const RunArgs *a, RunCtx *c) {
  NetBuildOptions o;
  netbuild_options_default(&o);
  int loss = c->in.labels != NULL;
  o.train = a->train, o.train_loss = loss, o.train_grad = a->train && a->grad;
  o.eval = !a->train, o.eval_loss = loss, o.eval_grad = !a->train && a->grad;
  o.label_smoothing = (float)a->smoothing;
  o.plan_reuse = !a->dump_masks;  // masks stay readable after the run
  char err[600];
  if (!a->train && a->smoothing > 0)
    fprintf(stderr, "nao-run: note: --label-smoothing applies in --train mode only (eval loss is plain CE)\n");
  if (netbuild_create(&c->ns, &o, &c->nb, err, sizeof err) != 0) {
    fprintf(stderr, "nao-run: %s: %s\n", a->net, err);
    return NAO_EXIT_INPUT;
  }
  model_state_init(&c->m, &c->nb.params);
  if (ckpt_load(a->weights, a->sgd ? CKPT_STATE : CKPT_WEIGHTS, &c->ns, &c->m, NULL, err,
                sizeof err) != 0) {
    fprintf(stderr, "nao-run: %s\n", err);
    return NAO_EXIT_INPUT;
  }
  const IrGraph *g = a->train ? &c->nb.train : &c->nb.eval;
  const Plan *p = a->train ? &c->nb.train_plan : &c->nb.eval_plan;
  c->ex = cpu_exec_create(g, p, c->in.n, a->threads, err, sizeof err);
  if (!c->ex) {
    fprintf(stderr, "nao-run: internal error: executor: %s\n", err);
    return NAO_EXIT_INTERNAL;
  }
  c->grads = xcalloc(c->nb.params.n_trainable + 1, sizeof(float));
  return NAO_EXIT_OK;
}

static void write_results(const RunArgs *a, RunCtx *c, const IrGraph *g) {
  int n = c->in.n;
  out_tensor(&c->out, c->ex, g, g->logits, n, "logits");
  if (g->aux_logits >= 0) out_tensor(&c->out, c->ex, g, g->aux_logits, n, "aux_logits");
  if (g->loss >= 0) out_tensor(&c->out, c->ex, g, g->loss, n, "loss");
  const ParamTable *pt = &c->nb.params;
  for (int i = 0; a->grad && i < pt->n; i++)
    if (pt->items[i].trainable) out_entry(&c->out, "grad.", &pt->items[i], c->grads + pt->items[i].offset);
  if (a->dump_masks) {
    int *nodes = xmalloc(sizeof(int) * (size_t)(g->n_nodes + 1));
    int k = netbuild_mask_nodes(g, nodes);
    for (int j = 0; j < k; j++) {
      const IrNode *nd = &g->nodes[nodes[j]];
      char name[IR_NAME_MAX + 8];
      snprintf(name, sizeof name, "mask.%s", nd->name);
      out_tensor(&c->out, c->ex, g, nd->out[1], n, name);
    }
    free(nodes);
  }
}

static void write_state(const RunArgs *a, RunCtx *c) {
  const ParamTable *pt = &c->nb.params;
  for (int i = 0; i < pt->n; i++) {
    const ParamInfo *p = &pt->items[i];
    if (!p->trainable && a->train) out_entry(&c->out, "", p, c->m.buffers + p->offset);
    if (p->trainable && a->sgd) out_entry(&c->out, "", p, c->m.params + p->offset);
  }
  for (int i = 0; a->sgd && i < pt->n; i++) {
    const ParamInfo *p = &pt->items[i];
    if (p->trainable && c->m.sgd.has_buf[i])
      out_entry(&c->out, "optimizer.momentum.", p, c->m.sgd.momentum + p->offset);
  }
}

static int run(const RunArgs *a, RunCtx *c) {
  const IrGraph *g = a->train ? &c->nb.train : &c->nb.eval;
  int n = c->in.n;
  cpu_exec_set_input(c->ex, c->in.x->data, n);
  if (c->in.labels) cpu_exec_set_labels(c->ex, c->in.labels, n);
  RunState rs = {a->step, a->total_steps, a->seed, a->train};
  if (cpu_exec_run(c->ex, n, &rs, c->m.params, a->grad ? c->grads : NULL, c->m.buffers) != 0) {
    fprintf(stderr, "nao-run: %s\n", cpu_exec_error(c->ex));
    return NAO_EXIT_INPUT;
  }
  write_results(a, c, g);
  if (a->sgd) {
    float *norm = out_add(&c->out, "grad_norm", 1, (const int64_t[]){1});
    *norm = (float)sgd_step(&c->m.sgd, cpu_exec_pool(c->ex), c->nb.grad_written, c->m.params,
                            c->grads, &a->hyper);
  }
  write_state(a, c);
  char err[600];
  StMeta meta[] = {{"producer", "nao-run"}, {"mode", a->train ? "train" : "eval"}};
  if (st_write(a->output, c->out.t, c->out.n, meta, 2, err, sizeof err) != 0) {
    fprintf(stderr, "nao-run: %s\n", err);
    return NAO_EXIT_INPUT;
  }
  return NAO_EXIT_OK;
}

int main(int argc, char **argv) {
  RunArgs a;
  int rc = parse_args(argc, argv, &a);
  if (rc >= 0) return rc;
  RunCtx c;
  memset(&c, 0, sizeof c);
  rc = nao_frontend_file(a.net, &c.ns, stderr);
  if (rc == NAO_EXIT_OK && read_input(&a, &c.ns, &c.in) != 0) rc = NAO_EXIT_INPUT;
  if (rc == NAO_EXIT_OK) rc = build(&a, &c);
  if (rc == NAO_EXIT_OK) rc = run(&a, &c);
  cpu_exec_free(c.ex);
  free(c.grads);
  free(c.in.labels);
  st_close(c.in.st);
  out_free(&c.out);
  if (c.m.table) model_state_free(&c.m);
  netbuild_free(&c.nb);
  return rc;
}
