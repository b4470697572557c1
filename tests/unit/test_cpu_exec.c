// tests/unit/test_cpu_exec.c — the CPU plan executor on a hand-built training
// graph: conv - bn - relu - max pool - [conv 1x1 | avg pool] - concat (as
// views, and as copies) - drop-path - add - gap - dropout - linear - xent,
// with its backward written by hand (accumulating gradients, gradient views
// of the concatenation). Its loss, logits, parameter gradients and running
// statistics must equal those of the same kernels composed directly on dense
// buffers; results must be bit-identical on 1 and 3 threads; dropout and
// drop-path must pass through when not training; a bad label, a broken graph
// and a too-small plan must be refused with a message naming the node. A
// second graph runs BN with running statistics (eval-mode backward, down to
// the input's gradient). A forced convolution algorithm (cpu_exec_set_conv_algo)
// gives the same step within float rounding; profiling records every step.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/cpu_kernels.h"
#include "runtime/exec_cpu.h"
#include "tests/unit/cpu_testutil.h"

enum { B = 5, K = 5 };

typedef struct {
  ParamTable pt;
  IrGraph g;
  int w0, gam, bet, rm, rv, w1, lw, lb;  // parameters
  // tensors
  int in, lab, c1, b1, mean, istd, r1, p1, cat, c2, pa, dp, dpm, add, gp, dout, dom, logits, loss, sm;
  int g_logits, g_do, g_gp, g_add, g_cat, g_c2, g_pa, g_p1, g_r1, g_b1, g_c1;
  int n_mask_dp, n_mask_do;  // node indices (mask keys)
} Net;

static int tensor(Net *t, IrTensorKind k, int c, int h, int w, const char *name) {
  return ir_add_tensor(&t->g, k, c, h, w, name);
}

static int view(Net *t, int base, int off, int c, const char *name) {
  const IrTensor *b = &t->g.tensors[base];
  int v = tensor(t, b->kind, c, b->h, b->w, name);
  t->g.tensors[v].view_of = base;
  t->g.tensors[v].chan_offset = off;
  return v;
}

static int node(Net *t, IrKind kind, const char *name, int n_in, const int *in, int n_out,
                const int *out, int n_param, const int *par, int fwd, int acc) {
  IrNode n;
  memset(&n, 0, sizeof n);
  n.kind = kind;
  snprintf(n.name, sizeof n.name, "%s", name);
  n.n_in = n_in;
  n.n_out = n_out;
  n.n_param = n_param;
  for (int k = 0; k < n_in; k++) n.in[k] = in[k];
  for (int k = 0; k < n_out; k++) n.out[k] = out[k];
  for (int k = 0; k < n_param; k++) n.param[k] = par[k];
  n.fwd = fwd;
  n.accumulate = acc;
  return ir_add_node(&t->g, &n);
}

#define A(...) ((const int[]){__VA_ARGS__})

static int param(Net *t, const char *name, int ndim, const int *dims, int trainable) {
  return params_get(&t->pt, name, ndim, dims, trainable, PINIT_ZEROS, 1, 0);
}

static void build(Net *t, int concat_views) {
  params_init(&t->pt);
  ir_init(&t->g, &t->pt, IR_MODE_TRAIN);
  t->w0 = param(t, "stem.0.weight", 4, A(6, 3, 3, 3), 1);
  t->gam = param(t, "stem.1.weight", 1, A(6), 1);
  t->bet = param(t, "stem.1.bias", 1, A(6), 1);
  t->rm = param(t, "stem.1.running_mean", 1, A(6), 0);
  t->rv = param(t, "stem.1.running_var", 1, A(6), 0);
  t->w1 = param(t, "conv1.weight", 4, A(4, 6, 1, 1), 1);
  t->lw = param(t, "classifier.weight", 2, A(K, 10), 1);
  t->lb = param(t, "classifier.bias", 1, A(K), 1);
  IrGraph *g = &t->g;
  t->in = g->input = tensor(t, IR_T_ACT, 3, 8, 8, "input");
  t->lab = g->labels = tensor(t, IR_T_LABELS, 1, 1, 1, "labels");
  t->c1 = tensor(t, IR_T_ACT, 6, 8, 8, "c1");
  t->b1 = tensor(t, IR_T_ACT, 6, 8, 8, "b1");
  t->mean = tensor(t, IR_T_STAT, 6, 1, 1, "b1.mean");
  t->istd = tensor(t, IR_T_STAT, 6, 1, 1, "b1.invstd");
  t->r1 = tensor(t, IR_T_ACT, 6, 8, 8, "r1");
  t->p1 = tensor(t, IR_T_ACT, 6, 4, 4, "p1");
  t->cat = tensor(t, IR_T_ACT, 10, 4, 4, "cat");
  t->c2 = concat_views ? view(t, t->cat, 0, 4, "c2") : tensor(t, IR_T_ACT, 4, 4, 4, "c2");
  t->pa = concat_views ? view(t, t->cat, 4, 6, "pa") : tensor(t, IR_T_ACT, 6, 4, 4, "pa");
  t->dp = tensor(t, IR_T_ACT, 10, 4, 4, "dp");
  t->dpm = tensor(t, IR_T_ACT, 1, 1, 1, "dp.mask");
  t->add = tensor(t, IR_T_ACT, 10, 4, 4, "add");
  t->gp = tensor(t, IR_T_ACT, 10, 1, 1, "gap");
  t->dout = tensor(t, IR_T_ACT, 10, 1, 1, "dropout");
  t->dom = tensor(t, IR_T_ACT, 10, 1, 1, "dropout.mask");
  t->logits = g->logits = tensor(t, IR_T_ACT, K, 1, 1, "logits");
  t->loss = g->loss = tensor(t, IR_T_SCALAR, 1, 1, 1, "loss");
  t->sm = tensor(t, IR_T_ACT, K, 1, 1, "softmax");
  g->has_loss = 1;

  node(t, IR_INPUT, "input", 0, NULL, 1, A(t->in), 0, NULL, -1, 0);
  node(t, IR_LABELS, "labels", 0, NULL, 1, A(t->lab), 0, NULL, -1, 0);
  int conv0 = node(t, IR_CONV, "stem.0", 1, A(t->in), 1, A(t->c1), 1, A(t->w0), -1, 0);
  g->nodes[conv0].a.conv = (IrConvAttr){3, 3, 1, 1, 1, 1, 1, 1, 1, 3, 6};
  int bn = node(t, IR_BN, "stem.1", 1, A(t->c1), 3, A(t->b1, t->mean, t->istd), 4,
                A(t->gam, t->bet, t->rm, t->rv), -1, 0);
  g->nodes[bn].a.bn = (IrBnAttr){1e-5f, 0.1f, 1, 1};
  node(t, IR_RELU, "relu", 1, A(t->b1), 1, A(t->r1), 0, NULL, -1, 0);
  int mp = node(t, IR_POOL, "maxpool", 1, A(t->r1), 1, A(t->p1), 0, NULL, -1, 0);
  g->nodes[mp].a.pool = (IrPoolAttr){1, 3, 3, 2, 2, 1, 1, 1, 1, 0};
  int conv1 = node(t, IR_CONV, "conv1", 1, A(t->p1), 1, A(t->c2), 1, A(t->w1), -1, 0);
  g->nodes[conv1].a.conv = (IrConvAttr){1, 1, 1, 1, 0, 0, 0, 0, 1, 6, 4};
  int ap = node(t, IR_POOL, "avgpool", 1, A(t->p1), 1, A(t->pa), 0, NULL, -1, 0);
  g->nodes[ap].a.pool = (IrPoolAttr){0, 3, 3, 1, 1, 1, 1, 1, 1, 0};
  node(t, IR_CONCAT, "concat", 2, A(t->c2, t->pa), 1, A(t->cat), 0, NULL, -1, 0);
  t->n_mask_dp = node(t, IR_DROPPATH, "droppath", 1, A(t->cat), 2, A(t->dp, t->dpm), 0, NULL, -1, 0);
  g->nodes[t->n_mask_dp].a.drop = (IrDropAttr){0.6f, 1, 4};
  node(t, IR_ADD, "add", 2, A(t->dp, t->cat), 1, A(t->add), 0, NULL, -1, 0);
  node(t, IR_GAP, "gap", 1, A(t->add), 1, A(t->gp), 0, NULL, -1, 0);
  t->n_mask_do = node(t, IR_DROPOUT, "dropout", 1, A(t->gp), 2, A(t->dout, t->dom), 0, NULL, -1, 0);
  g->nodes[t->n_mask_do].a.drop = (IrDropAttr){0.7f, 0, 0};
  node(t, IR_LINEAR, "classifier", 1, A(t->dout), 1, A(t->logits), 2, A(t->lw, t->lb), -1, 0);
  int xe = node(t, IR_XENT, "loss", 2, A(t->logits, t->lab), 2, A(t->loss, t->sm), 0, NULL, -1, 0);
  g->nodes[xe].a.xent = (IrXentAttr){0.1f, 1.0f};
  g->n_fwd_nodes = g->n_nodes;

  // ------------------------------------------------ backward, by hand
  t->g_logits = tensor(t, IR_T_ACT, K, 1, 1, "grad:logits");
  t->g_do = tensor(t, IR_T_ACT, 10, 1, 1, "grad:dropout");
  t->g_gp = tensor(t, IR_T_ACT, 10, 1, 1, "grad:gap");
  t->g_add = tensor(t, IR_T_ACT, 10, 4, 4, "grad:add");
  t->g_cat = tensor(t, IR_T_ACT, 10, 4, 4, "grad:cat");
  t->g_c2 = view(t, t->g_cat, 0, 4, "grad:c2");
  t->g_pa = view(t, t->g_cat, 4, 6, "grad:pa");
  t->g_p1 = tensor(t, IR_T_ACT, 6, 4, 4, "grad:p1");
  t->g_r1 = tensor(t, IR_T_ACT, 6, 8, 8, "grad:r1");
  t->g_b1 = tensor(t, IR_T_ACT, 6, 8, 8, "grad:b1");
  t->g_c1 = tensor(t, IR_T_ACT, 6, 8, 8, "grad:c1");
  node(t, IR_XENT_BWD, "loss", 2, A(t->sm, t->lab), 1, A(t->g_logits), 0, NULL, xe, 0);
  node(t, IR_LINEAR_BWD, "classifier", 2, A(t->dout, t->g_logits), 1, A(t->g_do), 2, A(t->lw, t->lb),
       g->n_fwd_nodes - 2, 0);
  node(t, IR_MASK_BWD, "dropout", 2, A(t->dom, t->g_do), 1, A(t->g_gp), 0, NULL, t->n_mask_do, 0);
  node(t, IR_GAP_BWD, "gap", 1, A(t->g_gp), 1, A(t->g_add), 0, NULL, -1, 0);
  node(t, IR_MASK_BWD, "droppath", 2, A(t->dpm, t->g_add), 1, A(t->g_cat), 0, NULL, t->n_mask_dp, 0);
  node(t, IR_ACCUM, "add", 1, A(t->g_add), 1, A(t->g_cat), 0, NULL, -1, 1);
  node(t, IR_POOL_BWD, "avgpool", 3, A(t->p1, t->pa, t->g_pa), 1, A(t->g_p1), 0, NULL, ap, 0);
  node(t, IR_CONV_BWD_FILTER, "conv1", 2, A(t->p1, t->g_c2), 0, NULL, 1, A(t->w1), conv1, 0);
  node(t, IR_CONV_BWD_DATA, "conv1", 1, A(t->g_c2), 1, A(t->g_p1), 1, A(t->w1), conv1, 1);
  node(t, IR_POOL_BWD, "maxpool", 3, A(t->r1, t->p1, t->g_p1), 1, A(t->g_r1), 0, NULL, mp, 0);
  node(t, IR_RELU_BWD, "relu", 2, A(t->r1, t->g_r1), 1, A(t->g_b1), 0, NULL, -1, 0);
  node(t, IR_BN_BWD, "stem.1", 4, A(t->c1, t->g_b1, t->mean, t->istd), 1, A(t->g_c1), 4,
       A(t->gam, t->bet, t->rm, t->rv), bn, 0);
  node(t, IR_CONV_BWD_FILTER, "stem.0", 2, A(t->in, t->g_c1), 0, NULL, 1, A(t->w0), conv0, 0);
}

static void net_free(Net *t) {
  ir_free(&t->g);
  params_free(&t->pt);
}

typedef struct {
  float *params, *grads, *buffers;
  float *x;
  int32_t labels[B];
} Data;

static void data_init(Data *d, const Net *t) {
  d->params = xmalloc(sizeof(float) * t->pt.n_trainable);
  d->grads = xmalloc(sizeof(float) * t->pt.n_trainable);
  d->buffers = xmalloc(sizeof(float) * t->pt.n_buffer);
  cput_fill(d->params, t->pt.n_trainable, 301, -0.5f, 0.5f);
  for (size_t i = 0; i < t->pt.n_trainable; i++) d->grads[i] = NAN;  // every slot must be written
  cput_fill(d->buffers, t->pt.n_buffer, 302, 0.5f, 1.0f);
  d->x = xmalloc(sizeof(float) * B * 3 * 64);
  cput_fill(d->x, B * 3 * 64, 303, -1, 1);
  for (int i = 0; i < B; i++) d->labels[i] = (i * 3) % K;
}

static void data_free(Data *d) {
  free(d->x);
  free(d->buffers);
  free(d->grads);
  free(d->params);
}

// The same computation, kernel by kernel, on dense buffers.
typedef struct {
  float loss, logits[B * K];
  float *grads, *buffers;
} Ref;

static float *P(const Net *t, float *arr, int p) { return arr + t->pt.items[p].offset; }

static void reference(const Net *t, const Data *d, const RunState *rs, Ref *r) {
  ThreadPool *tp = tp_create(2);
  float *params = d->params;
  r->grads = xmalloc(sizeof(float) * t->pt.n_trainable);
  r->buffers = xmalloc(sizeof(float) * t->pt.n_buffer);
  memcpy(r->buffers, d->buffers, sizeof(float) * t->pt.n_buffer);
  enum { S = 3 * 64, C1 = 6 * 64, P1 = 6 * 16, C2 = 4 * 16, CAT = 10 * 16 };
  float c1[B * C1], b1[B * C1], r1[B * C1], p1[B * P1], c2[B * C2], pa[B * P1], cat[B * CAT];
  float dp[B * CAT], dpm[B], add[B * CAT], gp[B * 10], dout[B * 10], dom[B * 10], sm[B * K];
  float mean[6], istd[6];
  CpuConvShape s0 = {B, 3, 8, 8, 6, 8, 8, 3, 3, 1, 1, 1, 1, 1, CPU_CONV_AUTO};
  CpuConvShape s1 = {B, 6, 4, 4, 4, 4, 4, 1, 1, 1, 1, 0, 0, 1, CPU_CONV_AUTO};
  CpuBnShape bs = {B, 6, 64, 1e-5f, 0.1f};
  CpuPoolShape mps = {B, 6, 8, 8, 4, 4, 3, 3, 2, 2, 1, 1, 1, 0};
  CpuPoolShape aps = {B, 6, 4, 4, 4, 4, 3, 3, 1, 1, 1, 1, 0, 0};
  float *ws = xmalloc(sizeof(float) * cpu_conv_ws_floats(&s0, CPU_CONV_BWD_FILTER, 2));
  cpu_conv_fwd(tp, &s0, d->x, S, P(t, params, t->w0), c1, C1, 0, ws);
  cpu_bn_fwd_train(tp, &bs, c1, C1, P(t, params, t->gam), P(t, params, t->bet), b1, C1, mean, istd,
                   P(t, r->buffers, t->rm), P(t, r->buffers, t->rv));
  cpu_relu_fwd(tp, B, C1, b1, C1, r1, C1);
  cpu_pool_fwd(tp, &mps, r1, C1, p1, P1);
  cpu_conv_fwd(tp, &s1, p1, P1, P(t, params, t->w1), c2, C2, 0, ws);
  cpu_pool_fwd(tp, &aps, p1, P1, pa, P1);
  for (int n = 0; n < B; n++) {
    memcpy(cat + n * CAT, c2 + n * C2, sizeof(float) * C2);
    memcpy(cat + n * CAT + C2, pa + n * P1, sizeof(float) * P1);
  }
  float kdp = rs->training ? cpu_droppath_keep(0.6f, 1, 4, rs->step, rs->total_steps) : 1.0f;
  cpu_droppath_fwd(tp, B, CAT, cat, CAT, dp, CAT, dpm, 1, kdp, cpu_mask_key(rs->seed, rs->step, t->n_mask_dp));
  const float *ins[2] = {dp, cat};
  const size_t iss[2] = {CAT, CAT};
  cpu_add(tp, B, CAT, 2, ins, iss, add, CAT, 0);
  cpu_gap_fwd(tp, B, 10, 16, add, CAT, gp, 10, 0);
  cpu_dropout_fwd(tp, B, 10, gp, 10, dout, 10, dom, 10, rs->training ? 0.7f : 1.0f,
                  cpu_mask_key(rs->seed, rs->step, t->n_mask_do));
  cpu_linear_fwd(tp, B, 10, K, dout, 10, P(t, params, t->lw), P(t, params, t->lb), r->logits, K, 0);
  NAO_ASSERT(cpu_xent_fwd(B, K, r->logits, K, d->labels, 1, 0.1f, 1.0f, &r->loss, sm, K) < 0);
  // backward
  float g_logits[B * K], g_do[B * 10], g_gp[B * 10], g_add[B * CAT], g_cat[B * CAT];
  float g_p1[B * P1], g_r1[B * C1], g_b1[B * C1], g_c1[B * C1];
  float *G = r->grads;
  cpu_xent_bwd(tp, B, K, sm, K, d->labels, 1, 0.1f, 1.0f, g_logits, K, 0);
  cpu_linear_bwd(tp, B, 10, K, dout, 10, g_logits, K, P(t, params, t->lw), g_do, 10, 0, P(t, G, t->lw), 0,
                 P(t, G, t->lb), 0);
  cpu_mask_mul(tp, B, 10, g_do, 10, dom, 10, 10, g_gp, 10, 0);
  cpu_gap_bwd(tp, B, 10, 16, g_gp, 10, g_add, CAT, 0);
  cpu_mask_mul(tp, B, CAT, g_add, CAT, dpm, 1, 1, g_cat, CAT, 0);
  cpu_copy(tp, B, CAT, g_add, CAT, g_cat, CAT, 1);
  cpu_pool_bwd(tp, &aps, p1, P1, g_cat + C2, CAT, g_p1, P1, 0);
  cpu_conv_bwd_filter(tp, &s1, p1, P1, g_cat, CAT, P(t, G, t->w1), 0, ws);
  cpu_conv_bwd_data(tp, &s1, g_cat, CAT, P(t, params, t->w1), g_p1, P1, 1, ws);
  cpu_pool_bwd(tp, &mps, r1, C1, g_p1, P1, g_r1, C1, 0);
  cpu_relu_bwd(tp, B, C1, r1, C1, g_r1, C1, g_b1, C1, 0);
  cpu_bn_bwd_train(tp, &bs, c1, C1, g_b1, C1, P(t, params, t->gam), mean, istd, g_c1, C1, 0,
                   P(t, G, t->gam), P(t, G, t->bet), 0);
  cpu_conv_bwd_filter(tp, &s0, d->x, S, g_c1, C1, P(t, G, t->w0), 0, ws);
  free(ws);
  tp_destroy(tp);
}

static void compare(const Net *t, CpuExec *ex, const Data *d, const Ref *r, const char *what) {
  float logits[B * K];
  cpu_exec_read(ex, t->logits, B, logits);
  double want[B * K];
  for (int i = 0; i < B * K; i++) want[i] = r->logits[i];
  char msg[300];
  snprintf(msg, sizeof msg, "%s: logits", what);
  cput_close(msg, logits, want, B * K, 1e-6, 1e-6);
  CPUT_CHECK(fabsf(cpu_exec_loss(ex) - r->loss) <= 1e-6f * (1 + fabsf(r->loss)), "%s: loss %.9g vs %.9g",
             what, cpu_exec_loss(ex), r->loss);
  for (int p = 0; p < t->pt.n; p++) {
    const ParamInfo *pi = &t->pt.items[p];
    const float *got = (pi->trainable ? d->grads : d->buffers) + pi->offset;
    const float *ref = (pi->trainable ? r->grads : r->buffers) + pi->offset;
    double *w = xmalloc(sizeof(double) * pi->numel);
    for (size_t i = 0; i < pi->numel; i++) w[i] = ref[i];
    snprintf(msg, sizeof msg, "%s: %s of %s", what, pi->trainable ? "gradient" : "buffer", pi->name);
    cput_close(msg, got, w, pi->numel, 1e-6 * (1 + cput_maxabs(w, pi->numel)), 1e-5);
    free(w);
  }
}

static CpuExec *make_exec(const Net *t, const Plan *p, int threads, const Data *d) {
  char err[512];
  CpuExec *ex = cpu_exec_create(&t->g, p, B, threads, err, sizeof err);
  if (!ex) {
    fprintf(stderr, "cpu_exec_create: %s\n", err);
    exit(1);
  }
  cpu_exec_set_input(ex, d->x, B);
  cpu_exec_set_labels(ex, d->labels, B);
  return ex;
}

static void check_graph(int concat_views) {
  Net t;
  build(&t, concat_views);
  Plan p;
  cput_plan_simple(&t.g, &p);
  const char *what = concat_views ? "concat as views" : "concat as copies";
  RunState rs = {3, 10, 77, 1};
  Data d[2];
  float *grads[2], loss[2];
  for (int k = 0; k < 2; k++) {  // 1 and 3 threads
    data_init(&d[k], &t);
    CpuExec *ex = make_exec(&t, &p, k ? 3 : 1, &d[k]);
    Ref r;
    reference(&t, &d[k], &rs, &r);  // first: the run updates the running statistics in place
    CPUT_CHECK(cpu_exec_run(ex, B, &rs, d[k].params, d[k].grads, d[k].buffers) == 0, "%s: run: %s",
               what, cpu_exec_error(ex));
    compare(&t, ex, &d[k], &r, what);
    grads[k] = d[k].grads;
    loss[k] = cpu_exec_loss(ex);
    free(r.grads);
    free(r.buffers);
    cpu_exec_free(ex);
  }
  CPUT_CHECK(loss[0] == loss[1] && memcmp(grads[0], grads[1], sizeof(float) * t.pt.n_trainable) == 0 &&
                 memcmp(d[0].buffers, d[1].buffers, sizeof(float) * t.pt.n_buffer) == 0,
             "%s: 1 and 3 threads differ", what);
  // Not training: masks are all ones.
  CpuExec *ex = make_exec(&t, &p, 2, &d[0]);
  RunState eval = {3, 10, 77, 0};
  CPUT_CHECK(cpu_exec_run(ex, B, &eval, d[0].params, d[0].grads, d[0].buffers) == 0, "eval run");
  float m[B * 10];
  cpu_exec_read(ex, t.dom, B, m);
  int ones = 0;
  for (int i = 0; i < B * 10; i++) ones += m[i] == 1.0f;
  cpu_exec_read(ex, t.dpm, B, m);
  for (int i = 0; i < B; i++) ones += m[i] == 1.0f;
  CPUT_CHECK(ones == B * 11, "%s: %d of %d mask values are 1 when not training", what, ones, B * 11);
  // A smaller batch runs in the same arena (its tensors move: set the data again).
  cpu_exec_set_input(ex, d[0].x, 2);
  cpu_exec_set_labels(ex, d[0].labels, 2);
  CPUT_CHECK(cpu_exec_run(ex, 2, &rs, d[0].params, d[0].grads, d[0].buffers) == 0, "batch 2 run");
  // A bad label is refused, naming the node and the sample.
  int32_t bad[B] = {0, 1, 2, 9, 0};
  cpu_exec_set_labels(ex, bad, B);
  CPUT_CHECK(cpu_exec_run(ex, B, &rs, d[0].params, d[0].grads, d[0].buffers) == -1 &&
                 strstr(cpu_exec_error(ex), "sample 3 has label 9") && strstr(cpu_exec_error(ex), "'loss'"),
             "bad label: '%s'", cpu_exec_error(ex));
  cpu_exec_free(ex);
  for (int k = 0; k < 2; k++) data_free(&d[k]);
  cput_plan_free(&p);
  net_free(&t);
}

static void check_refusals(void) {
  Net t;
  build(&t, 1);
  Plan p;
  cput_plan_simple(&t.g, &p);
  char err[512];
  // A conv whose output size does not follow from its attributes.
  t.g.nodes[2].a.conv.sh = 2;
  CPUT_CHECK(!cpu_exec_create(&t.g, &p, B, 1, err, sizeof err) && strstr(err, "'stem.0'") &&
                 strstr(err, "output 8x8, expected 4x8"),
             "broken conv: '%s'", err);
  t.g.nodes[2].a.conv.sh = 1;
  // An arena too small for the batch.
  p.arena_per_image -= 1;
  CPUT_CHECK(!cpu_exec_create(&t.g, &p, B, 1, err, sizeof err) && strstr(err, "ends past the arena"),
             "small arena: '%s'", err);
  p.arena_per_image += 1;
  // Accumulating into an output the kind cannot accumulate.
  t.g.nodes[4].accumulate = 1;
  CPUT_CHECK(!cpu_exec_create(&t.g, &p, B, 1, err, sizeof err) && strstr(err, "'relu'") &&
                 strstr(err, "accumulate"),
             "accumulating relu: '%s'", err);
  t.g.nodes[4].accumulate = 0;
  // An unknown kind.
  t.g.nodes[4].kind = IR_KIND_COUNT;
  CPUT_CHECK(!cpu_exec_create(&t.g, &p, B, 1, err, sizeof err) && strstr(err, "not supported"),
             "unknown kind: '%s'", err);
  cput_plan_free(&p);
  net_free(&t);
}

// ---------------------------------------------------------------- evaluation-mode BN
// conv - bn (running statistics) - relu - gap - linear - xent and its backward
// (BN_BWD with two inputs), down to the input's gradient: the executor against
// the kernels composed directly.
static void check_eval_bn(void) {
  Net t;
  memset(&t, 0, sizeof t);
  params_init(&t.pt);
  ir_init(&t.g, &t.pt, IR_MODE_EVAL);
  IrGraph *g = &t.g;
  t.w0 = param(&t, "stem.0.weight", 4, A(4, 3, 3, 3), 1);
  t.gam = param(&t, "stem.1.weight", 1, A(4), 1);
  t.bet = param(&t, "stem.1.bias", 1, A(4), 1);
  t.rm = param(&t, "stem.1.running_mean", 1, A(4), 0);
  t.rv = param(&t, "stem.1.running_var", 1, A(4), 0);
  t.lw = param(&t, "classifier.weight", 2, A(K, 4), 1);
  t.lb = param(&t, "classifier.bias", 1, A(K), 1);
  t.in = g->input = tensor(&t, IR_T_ACT, 3, 8, 8, "input");
  t.lab = g->labels = tensor(&t, IR_T_LABELS, 1, 1, 1, "labels");
  t.c1 = tensor(&t, IR_T_ACT, 4, 8, 8, "c1");
  t.b1 = tensor(&t, IR_T_ACT, 4, 8, 8, "b1");
  t.r1 = tensor(&t, IR_T_ACT, 4, 8, 8, "r1");
  t.gp = tensor(&t, IR_T_ACT, 4, 1, 1, "gap");
  t.logits = g->logits = tensor(&t, IR_T_ACT, K, 1, 1, "logits");
  t.loss = g->loss = tensor(&t, IR_T_SCALAR, 1, 1, 1, "loss");
  t.sm = tensor(&t, IR_T_ACT, K, 1, 1, "softmax");
  g->has_loss = 1;
  node(&t, IR_INPUT, "input", 0, NULL, 1, A(t.in), 0, NULL, -1, 0);
  node(&t, IR_LABELS, "labels", 0, NULL, 1, A(t.lab), 0, NULL, -1, 0);
  int conv = node(&t, IR_CONV, "stem.0", 1, A(t.in), 1, A(t.c1), 1, A(t.w0), -1, 0);
  g->nodes[conv].a.conv = (IrConvAttr){3, 3, 1, 1, 1, 1, 1, 1, 1, 3, 4};
  int bn = node(&t, IR_BN, "stem.1", 1, A(t.c1), 1, A(t.b1), 4, A(t.gam, t.bet, t.rm, t.rv), -1, 0);
  g->nodes[bn].a.bn = (IrBnAttr){1e-5f, 0.1f, 0, 0};
  node(&t, IR_RELU, "relu", 1, A(t.b1), 1, A(t.r1), 0, NULL, -1, 0);
  node(&t, IR_GAP, "gap", 1, A(t.r1), 1, A(t.gp), 0, NULL, -1, 0);
  int lin = node(&t, IR_LINEAR, "classifier", 1, A(t.gp), 1, A(t.logits), 2, A(t.lw, t.lb), -1, 0);
  int xe = node(&t, IR_XENT, "loss", 2, A(t.logits, t.lab), 2, A(t.loss, t.sm), 0, NULL, -1, 0);
  g->nodes[xe].a.xent = (IrXentAttr){0.0f, 1.0f};
  g->n_fwd_nodes = g->n_nodes;
  int gl = tensor(&t, IR_T_ACT, K, 1, 1, "grad:logits"), gg = tensor(&t, IR_T_ACT, 4, 1, 1, "grad:gap");
  int gr = tensor(&t, IR_T_ACT, 4, 8, 8, "grad:r1"), gb = tensor(&t, IR_T_ACT, 4, 8, 8, "grad:b1");
  int gc = tensor(&t, IR_T_ACT, 4, 8, 8, "grad:c1"), gi = tensor(&t, IR_T_ACT, 3, 8, 8, "grad:input");
  node(&t, IR_XENT_BWD, "loss", 2, A(t.sm, t.lab), 1, A(gl), 0, NULL, xe, 0);
  node(&t, IR_LINEAR_BWD, "classifier", 2, A(t.gp, gl), 1, A(gg), 2, A(t.lw, t.lb), lin, 0);
  node(&t, IR_GAP_BWD, "gap", 1, A(gg), 1, A(gr), 0, NULL, -1, 0);
  node(&t, IR_RELU_BWD, "relu", 2, A(t.r1, gr), 1, A(gb), 0, NULL, -1, 0);
  node(&t, IR_BN_BWD, "stem.1", 2, A(t.c1, gb), 1, A(gc), 4, A(t.gam, t.bet, t.rm, t.rv), bn, 0);
  node(&t, IR_CONV_BWD_FILTER, "stem.0", 2, A(t.in, gc), 0, NULL, 1, A(t.w0), conv, 0);
  node(&t, IR_CONV_BWD_DATA, "stem.0", 1, A(gc), 1, A(gi), 1, A(t.w0), conv, 0);
  Plan p;
  cput_plan_simple(g, &p);
  Data d;
  data_init(&d, &t);
  CpuExec *ex = make_exec(&t, &p, 2, &d);
  float *buf0 = xmalloc(sizeof(float) * t.pt.n_buffer);
  memcpy(buf0, d.buffers, sizeof(float) * t.pt.n_buffer);
  CPUT_CHECK(cpu_exec_run(ex, B, NULL, d.params, d.grads, d.buffers) == 0, "eval bn: %s", cpu_exec_error(ex));
  CPUT_CHECK(memcmp(buf0, d.buffers, sizeof(float) * t.pt.n_buffer) == 0, "eval bn changed its running statistics");
  // The same kernels, composed.
  enum { S = 3 * 64, C = 4 * 64 };
  float c1[B * C], b1[B * C], r1[B * C], gp[B * 4], logits[B * K], sm[B * K], loss;
  float g_l[B * K], g_g[B * 4], g_r[B * C], g_b[B * C], g_c[B * C], g_i[B * S];
  float *G = xmalloc(sizeof(float) * t.pt.n_trainable), *pr = d.params;
  CpuConvShape cs = {B, 3, 8, 8, 4, 8, 8, 3, 3, 1, 1, 1, 1, 1, CPU_CONV_AUTO};
  CpuBnShape bs = {B, 4, 64, 1e-5f, 0.1f};
  size_t wsn = 0;
  for (int op = 0; op < 3; op++) {
    size_t w = cpu_conv_ws_floats(&cs, (CpuConvOp)op, 1);
    wsn = w > wsn ? w : wsn;
  }
  float *ws = xmalloc(sizeof(float) * (wsn + 1));
  cpu_conv_fwd(NULL, &cs, d.x, S, P(&t, pr, t.w0), c1, C, 0, ws);
  cpu_bn_fwd_eval(NULL, &bs, c1, C, P(&t, pr, t.gam), P(&t, pr, t.bet), P(&t, buf0, t.rm), P(&t, buf0, t.rv), b1, C);
  cpu_relu_fwd(NULL, B, C, b1, C, r1, C);
  cpu_gap_fwd(NULL, B, 4, 64, r1, C, gp, 4, 0);
  cpu_linear_fwd(NULL, B, 4, K, gp, 4, P(&t, pr, t.lw), P(&t, pr, t.lb), logits, K, 0);
  NAO_ASSERT(cpu_xent_fwd(B, K, logits, K, d.labels, 1, 0.0f, 1.0f, &loss, sm, K) < 0);
  cpu_xent_bwd(NULL, B, K, sm, K, d.labels, 1, 0.0f, 1.0f, g_l, K, 0);
  cpu_linear_bwd(NULL, B, 4, K, gp, 4, g_l, K, P(&t, pr, t.lw), g_g, 4, 0, P(&t, G, t.lw), 0, P(&t, G, t.lb), 0);
  cpu_gap_bwd(NULL, B, 4, 64, g_g, 4, g_r, C, 0);
  cpu_relu_bwd(NULL, B, C, r1, C, g_r, C, g_b, C, 0);
  cpu_bn_bwd_eval(NULL, &bs, c1, C, g_b, C, P(&t, pr, t.gam), P(&t, buf0, t.rm), P(&t, buf0, t.rv), g_c, C, 0,
                  P(&t, G, t.gam), P(&t, G, t.bet), 0);
  cpu_conv_bwd_filter(NULL, &cs, d.x, S, g_c, C, P(&t, G, t.w0), 0, ws);
  cpu_conv_bwd_data(NULL, &cs, g_c, C, P(&t, pr, t.w0), g_i, S, 0, ws);
  double want[B * S];
  float got[B * S];
  for (int i = 0; i < B * K; i++) want[i] = logits[i];
  cpu_exec_read(ex, t.logits, B, got);
  cput_close("eval bn: logits", got, want, B * K, 1e-6, 1e-6);
  CPUT_CHECK(fabsf(cpu_exec_loss(ex) - loss) <= 1e-6f * (1 + fabsf(loss)), "eval bn: loss");
  for (size_t i = 0; i < t.pt.n_trainable; i++) want[i] = G[i];
  cput_close("eval bn: parameter gradients", d.grads, want, t.pt.n_trainable, 1e-6, 1e-5);
  for (int i = 0; i < B * S; i++) want[i] = g_i[i];
  cpu_exec_read(ex, gi, B, got);
  cput_close("eval bn: input gradient", got, want, B * S, 1e-6, 1e-5);
  free(ws);
  free(G);
  free(buf0);
  cpu_exec_free(ex);
  data_free(&d);
  cput_plan_free(&p);
  net_free(&t);
}

// A forced convolution algorithm (the workspace grows as it needs) gives the
// same step within float rounding; profiling records a time for every step
// and stops when turned off.
static void check_algo_and_profile(void) {
  Net t;
  build(&t, 1);
  Plan p;
  cput_plan_simple(&t.g, &p);
  RunState rs = {3, 10, 77, 1};
  Data d;
  data_init(&d, &t);
  const size_t np = t.pt.n_trainable;
  float *buf0 = xmalloc(sizeof(float) * (t.pt.n_buffer + 1));
  memcpy(buf0, d.buffers, sizeof(float) * t.pt.n_buffer);
  float *g_auto = xmalloc(sizeof(float) * np);
  CpuExec *ex = make_exec(&t, &p, 2, &d);
  CPUT_CHECK(cpu_exec_run(ex, B, &rs, d.params, d.grads, d.buffers) == 0, "auto run");
  const float l_auto = cpu_exec_loss(ex);
  memcpy(g_auto, d.grads, sizeof(float) * np);
  const int algos[3] = {CPU_CONV_PORTABLE, CPU_CONV_AVX2, CPU_CONV_WINOGRAD};
  for (int a = 0; a < 3; a++) {
    cpu_exec_set_conv_algo(ex, algos[a]);
    memcpy(d.buffers, buf0, sizeof(float) * t.pt.n_buffer);
    CPUT_CHECK(cpu_exec_run(ex, B, &rs, d.params, d.grads, d.buffers) == 0, "algo %d run", algos[a]);
    double m = 0, scale = 0;
    for (size_t i = 0; i < np; i++) {
      scale = fmax(scale, fabs(g_auto[i]));
      m = fmax(m, fabs((double)d.grads[i] - g_auto[i]));
    }
    // Other summation orders and FMA: a few float ulps of the largest terms.
    CPUT_CHECK(fabsf(cpu_exec_loss(ex) - l_auto) <= 1e-5f * (1 + fabsf(l_auto)) && m <= 1e-4 * scale,
               "algo %d: loss %.9g vs %.9g, gradients off by %.3g of %.3g", algos[a],
               cpu_exec_loss(ex), l_auto, m, scale);
  }
  double *ms = xcalloc((size_t)p.n_steps + 1, sizeof(double));
  cpu_exec_set_profile(ex, ms, 1);
  CPUT_CHECK(cpu_exec_run(ex, B, &rs, d.params, d.grads, d.buffers) == 0, "profiled run");
  double sum = 0;
  int neg = 0;
  for (int k = 0; k < p.n_steps; k++) sum += ms[k], neg += ms[k] < 0;
  CPUT_CHECK(sum > 0 && !neg, "profile: total %g ms, %d negative steps", sum, neg);
  cpu_exec_set_profile(ex, NULL, 0);
  ms[p.n_steps] = -7;
  double before = ms[0];
  CPUT_CHECK(cpu_exec_run(ex, B, &rs, d.params, d.grads, d.buffers) == 0, "unprofiled run");
  CPUT_CHECK(ms[0] == before && ms[p.n_steps] == -7, "profiling did not stop");
  free(ms);
  cpu_exec_free(ex);
  free(g_auto);
  free(buf0);
  data_free(&d);
  cput_plan_free(&p);
  net_free(&t);
}

int main(void) {
  check_algo_and_profile();
  check_graph(1);
  check_graph(0);
  check_eval_bn();
  check_refusals();
  if (cput_failures) {
    fprintf(stderr, "test_cpu_exec: %d failures\n", cput_failures);
    return 1;
  }
  printf("test_cpu_exec: ok\n");
  return 0;
}
