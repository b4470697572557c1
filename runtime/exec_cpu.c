// runtime/exec_cpu.c — the CPU plan executor (exec_cpu.h): allocation once,
// then one kernel call per step, dispatched on the node's kind.
//
// Tensor addresses come from plan_tensor_ptr for the run's batch size and the
// sample strides from the plan's locations, so channel-slice views and arena
// reuse are the plan's business: the executor never copies except for a
// CONCAT whose inputs the plan did not place as views of its output.
// Unbatched tensors (statistics, losses) are one "sample".
#include "runtime/exec_cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler/util.h"
#include "runtime/exec_cpu_internal.h"

// ---------------------------------------------------------------- addressing
static float *ex_ptr(const CpuExec *ex, int t) {
  return plan_tensor_ptr(ex->p, t, ex->arena, ex->fixed, ex->batch);
}
static size_t ex_ss(const CpuExec *ex, int t) { return ex->p->loc[t].sample_stride; }
static int ex_n(const CpuExec *ex, int t) { return ex_batched(ex_t(ex, t)) ? ex->batch : 1; }
static size_t ex_numel(const CpuExec *ex, int t) { return ir_tensor_numel(ex_t(ex, t)); }

static float *ex_param(const CpuExec *ex, int pi) {
  const ParamInfo *p = &ex->g->params->items[pi];
  return (p->trainable ? ex->params : ex->buffers) + p->offset;
}
static float *ex_grad(const CpuExec *ex, int pi) {
  return ex->grads + ex->g->params->items[pi].offset;
}

static int ex_acc(const IrNode *nd, int bit) { return (nd->accumulate >> bit) & 1; }

static void *ex_aligned(size_t floats, const char *what) {
  void *p = NULL;
  size_t bytes = (floats ? floats : 1) * sizeof(float);
  int rc = posix_memalign(&p, 64, bytes);
  if (rc != 0 || !p)
    nao_internal("posix_memalign of %zu bytes for the cpu backend's %s failed", bytes, what);
  memset(p, 0, bytes);
  return p;
}

// A CONCAT is free when each input sits exactly at its slice of the output.
static int ex_concat_is_view(const CpuExec *ex, const IrNode *nd) {
  const PlanLoc *lo = &ex->p->loc[nd->out[0]];
  const IrTensor *y = ex_t(ex, nd->out[0]);
  size_t off = 0;
  for (int k = 0; k < nd->n_in; k++) {
    const PlanLoc *li = &ex->p->loc[nd->in[k]];
    if (li->region != lo->region || li->scaled != lo->scaled ||
        li->unscaled != lo->unscaled + off || li->sample_stride != lo->sample_stride)
      return 0;
    off += (size_t)ex_t(ex, nd->in[k])->c * (size_t)y->h * (size_t)y->w;
  }
  return 1;
}

// ---------------------------------------------------------------- create / free
static int ex_prepare(CpuExec *ex) {
  const IrGraph *g = ex->g;
  const Plan *p = ex->p;
  ex->concat_is_view = xcalloc((size_t)(g->n_nodes ? g->n_nodes : 1), 1);
  size_t ws = 0;
  for (int k = 0; k < p->n_steps; k++) {
    int i = p->steps[k];
    if (i < 0 || i >= g->n_nodes) {
      snprintf(ex->err, sizeof ex->err, "cpu backend: plan step %d names node %d of %d", k, i,
               g->n_nodes);
      return -1;
    }
    if (ex_check_node(ex, i)) return -1;
    if (g->nodes[i].kind == IR_CONCAT) ex->concat_is_view[i] = (unsigned char)ex_concat_is_view(ex, &g->nodes[i]);
    size_t w = ex_node_ws(ex, i);
    if (w > ws) ws = w;
  }
  for (int t = 0; t < 2; t++) {
    int id = t ? g->labels : g->input;
    if (id >= 0 && ex_check_loc(ex, p->n_steps ? p->steps[0] : 0, id)) return -1;
  }
  ex->ws_floats = ws;
  return 0;
}

CpuExec *cpu_exec_create(const IrGraph *g, const Plan *p, int max_batch, int threads, char *err,
                         size_t errlen) {
  CpuExec *ex = xcalloc(1, sizeof *ex);
  ex->g = g;
  ex->p = p;
  ex->max_batch = max_batch;
  if (max_batch < 1 || (p->arena_per_image && (size_t)max_batch > SIZE_MAX / 8 / p->arena_per_image)) {
    snprintf(err, errlen, "cpu backend: bad maximum batch %d", max_batch);
    cpu_exec_free(ex);
    return NULL;
  }
  ex->tp = tp_create(threads);
  if (g->n_nodes > 0 && ex_prepare(ex)) {
    snprintf(err, errlen, "%s", ex->err);
    cpu_exec_free(ex);
    return NULL;
  }
  cpu_blas_single_thread();
  ex->arena_floats = p->arena_per_image * (size_t)max_batch;
  ex->fixed_floats = p->fixed_floats;
  ex->arena = ex_aligned(ex->arena_floats, "activation arena");
  ex->fixed = ex_aligned(ex->fixed_floats, "fixed region");
  ex->ws = ex_aligned(ex->ws_floats, "workspace");
  return ex;
}

void cpu_exec_free(CpuExec *ex) {
  if (!ex) return;
  tp_destroy(ex->tp);
  free(ex->arena);
  free(ex->fixed);
  free(ex->ws);
  free(ex->concat_is_view);
  free(ex);
}

// ---------------------------------------------------------------- forward kinds
static void run_conv(CpuExec *ex, const IrNode *nd) {
  CpuConvShape s = ex_conv_shape(&nd->a.conv, ex_t(ex, nd->in[0]), ex_t(ex, nd->out[0]), ex->batch);
  s.algo = ex->conv_algo;
  cpu_conv_fwd(ex->tp, &s, ex_ptr(ex, nd->in[0]), ex_ss(ex, nd->in[0]), ex_param(ex, nd->param[0]),
               ex_ptr(ex, nd->out[0]), ex_ss(ex, nd->out[0]), ex_acc(nd, 0), ex->ws);
}

static CpuBnShape ex_bn_shape(const CpuExec *ex, const IrNode *nd, int x) {
  const IrTensor *t = ex_t(ex, x);
  const IrBnAttr *a = &ex_attr_node(ex, nd)->a.bn;
  CpuBnShape s = {ex->batch, t->c, t->h * t->w, a->eps, a->momentum};
  return s;
}

static void run_bn(CpuExec *ex, const IrNode *nd) {
  CpuBnShape s = ex_bn_shape(ex, nd, nd->in[0]);
  const int x = nd->in[0], y = nd->out[0];
  float *gamma = ex_param(ex, nd->param[0]), *beta = ex_param(ex, nd->param[1]);
  float *rm = ex_param(ex, nd->param[2]), *rv = ex_param(ex, nd->param[3]);
  if (!nd->a.bn.batch_stats) {
    cpu_bn_fwd_eval(ex->tp, &s, ex_ptr(ex, x), ex_ss(ex, x), gamma, beta, rm, rv, ex_ptr(ex, y),
                    ex_ss(ex, y));
    return;
  }
  const int upd = nd->a.bn.update_running;
  cpu_bn_fwd_train(ex->tp, &s, ex_ptr(ex, x), ex_ss(ex, x), gamma, beta, ex_ptr(ex, y), ex_ss(ex, y),
                   nd->n_out > 1 ? ex_ptr(ex, nd->out[1]) : NULL,
                   nd->n_out > 2 ? ex_ptr(ex, nd->out[2]) : NULL, upd ? rm : NULL, upd ? rv : NULL);
}

static void run_add(CpuExec *ex, const IrNode *nd) {
  const float *in[IR_MAX_IN];
  size_t ss[IR_MAX_IN];
  for (int k = 0; k < nd->n_in; k++) {
    in[k] = ex_ptr(ex, nd->in[k]);
    ss[k] = ex_ss(ex, nd->in[k]);
  }
  const int y = nd->out[0];
  cpu_add(ex->tp, ex_n(ex, y), ex_numel(ex, y), nd->n_in, in, ss, ex_ptr(ex, y), ex_ss(ex, y),
          ex_acc(nd, 0));
}

static void run_concat(CpuExec *ex, int i, const IrNode *nd) {
  if (ex->concat_is_view[i]) return;
  const int y = nd->out[0];
  const IrTensor *ty = ex_t(ex, y);
  float *dst = ex_ptr(ex, y);
  for (int k = 0; k < nd->n_in; k++) {
    const int x = nd->in[k];
    cpu_copy(ex->tp, ex->batch, ex_numel(ex, x), ex_ptr(ex, x), ex_ss(ex, x), dst, ex_ss(ex, y), 0);
    dst += (size_t)ex_t(ex, x)->c * (size_t)ty->h * (size_t)ty->w;
  }
}

static CpuPoolShape ex_pool_shape(const CpuExec *ex, const IrPoolAttr *a, int x, int y) {
  const IrTensor *tx = ex_t(ex, x), *ty = ex_t(ex, y);
  CpuPoolShape s = {ex->batch, tx->c, tx->h, tx->w, ty->h, ty->w, a->kh, a->kw, a->sh, a->sw,
                    a->pt, a->pl, a->is_max, a->pad_counted};
  return s;
}

static void run_linear(CpuExec *ex, const IrNode *nd) {
  const int x = nd->in[0], y = nd->out[0];
  cpu_linear_fwd(ex->tp, ex->batch, (int)ex_numel(ex, x), ex_t(ex, y)->c, ex_ptr(ex, x), ex_ss(ex, x),
                 ex_param(ex, nd->param[0]), nd->n_param > 1 ? ex_param(ex, nd->param[1]) : NULL,
                 ex_ptr(ex, y), ex_ss(ex, y), ex_acc(nd, 0));
}

static void run_drop(CpuExec *ex, int i, const IrNode *nd) {
  const int x = nd->in[0], y = nd->out[0], m = nd->out[1];
  const RunState *rs = ex->rs;
  const IrDropAttr *a = &nd->a.drop;
  uint64_t key = cpu_mask_key(rs->seed, rs->step, i);
  if (nd->kind == IR_DROPOUT) {
    float keep = rs->training ? a->keep : 1.0f;
    cpu_dropout_fwd(ex->tp, ex->batch, ex_numel(ex, x), ex_ptr(ex, x), ex_ss(ex, x), ex_ptr(ex, y),
                    ex_ss(ex, y), ex_ptr(ex, m), ex_ss(ex, m), keep, key);
  } else {
    float keep = rs->training ? cpu_droppath_keep(a->keep, a->cell, a->n_cells, rs->step, rs->total_steps)
                              : 1.0f;
    cpu_droppath_fwd(ex->tp, ex->batch, ex_numel(ex, x), ex_ptr(ex, x), ex_ss(ex, x), ex_ptr(ex, y),
                     ex_ss(ex, y), ex_ptr(ex, m), ex_ss(ex, m), keep, key);
  }
}

static const int32_t *ex_labels(const CpuExec *ex, int t) {
  return (const int32_t *)(const void *)ex_ptr(ex, t);
}

static int ex_bad_label(CpuExec *ex, int i, int lab_t, int sample, int k) {
  int32_t v = ex_labels(ex, lab_t)[(size_t)sample * ex_ss(ex, lab_t)];
  snprintf(ex->err, sizeof ex->err, "node %d '%s': sample %d has label %d, outside [0, %d)", i,
           ex->g->nodes[i].name, sample, (int)v, k);
  return -1;
}

static int run_xent(CpuExec *ex, int i, const IrNode *nd) {
  const int z = nd->in[0], lab = nd->in[1];
  const int k = ex_t(ex, z)->c;
  int bad = cpu_xent_fwd(ex->batch, k, ex_ptr(ex, z), ex_ss(ex, z), ex_labels(ex, lab), ex_ss(ex, lab),
                         nd->a.xent.smoothing, nd->a.xent.weight, ex_ptr(ex, nd->out[0]),
                         nd->n_out > 1 ? ex_ptr(ex, nd->out[1]) : NULL,
                         nd->n_out > 1 ? ex_ss(ex, nd->out[1]) : 0);
  return bad >= 0 ? ex_bad_label(ex, i, lab, bad, k) : 0;
}

// ---------------------------------------------------------------- backward kinds
static void run_conv_bwd(CpuExec *ex, const IrNode *nd) {
  const IrConvAttr *a = &ex_attr_node(ex, nd)->a.conv;
  const float *w = ex_param(ex, nd->param[0]);
  if (nd->kind == IR_CONV_BWD_DATA) {
    const int dy = nd->in[0], dx = nd->out[0];
    CpuConvShape s = ex_conv_shape(a, ex_t(ex, dx), ex_t(ex, dy), ex->batch);
    s.algo = ex->conv_algo;
    cpu_conv_bwd_data(ex->tp, &s, ex_ptr(ex, dy), ex_ss(ex, dy), w, ex_ptr(ex, dx), ex_ss(ex, dx),
                      ex_acc(nd, 0), ex->ws);
    return;
  }
  const int x = nd->in[0], dy = nd->in[1];
  CpuConvShape s = ex_conv_shape(a, ex_t(ex, x), ex_t(ex, dy), ex->batch);
  s.algo = ex->conv_algo;
  cpu_conv_bwd_filter(ex->tp, &s, ex_ptr(ex, x), ex_ss(ex, x), ex_ptr(ex, dy), ex_ss(ex, dy),
                      ex_grad(ex, nd->param[0]), ex_acc(nd, IR_MAX_OUT), ex->ws);
}

static void run_bn_bwd(CpuExec *ex, const IrNode *nd) {
  CpuBnShape s = ex_bn_shape(ex, nd, nd->in[0]);
  const int x = nd->in[0], dy = nd->in[1], dx = nd->n_out ? nd->out[0] : -1;
  const float *gamma = ex_param(ex, nd->param[0]);
  float *dxp = dx >= 0 ? ex_ptr(ex, dx) : NULL;
  size_t dxs = dx >= 0 ? ex_ss(ex, dx) : 0;
  float *dg = ex_grad(ex, nd->param[0]), *db = ex_grad(ex, nd->param[1]);
  const int accp = ex_acc(nd, IR_MAX_OUT);  // gamma and beta alike (checked)
  if (nd->n_in == 4) {
    cpu_bn_bwd_train(ex->tp, &s, ex_ptr(ex, x), ex_ss(ex, x), ex_ptr(ex, dy), ex_ss(ex, dy), gamma,
                     ex_ptr(ex, nd->in[2]), ex_ptr(ex, nd->in[3]), dxp, dxs, ex_acc(nd, 0), dg, db,
                     accp);
  } else {
    cpu_bn_bwd_eval(ex->tp, &s, ex_ptr(ex, x), ex_ss(ex, x), ex_ptr(ex, dy), ex_ss(ex, dy), gamma,
                    ex_param(ex, nd->param[2]), ex_param(ex, nd->param[3]), dxp, dxs, ex_acc(nd, 0),
                    dg, db, accp);
  }
}

static void run_linear_bwd(CpuExec *ex, const IrNode *nd) {
  const int x = nd->in[0], dy = nd->in[1], dx = nd->n_out ? nd->out[0] : -1;
  const int d = (int)ex_numel(ex, x), k = ex_t(ex, dy)->c;
  cpu_linear_bwd(ex->tp, ex->batch, d, k, ex_ptr(ex, x), ex_ss(ex, x), ex_ptr(ex, dy), ex_ss(ex, dy),
                 ex_param(ex, nd->param[0]), dx >= 0 ? ex_ptr(ex, dx) : NULL, dx >= 0 ? ex_ss(ex, dx) : 0,
                 ex_acc(nd, 0), ex_grad(ex, nd->param[0]), ex_acc(nd, IR_MAX_OUT),
                 nd->n_param > 1 ? ex_grad(ex, nd->param[1]) : NULL, ex_acc(nd, IR_MAX_OUT + 1));
}

static int run_xent_bwd(CpuExec *ex, int i, const IrNode *nd) {
  const IrXentAttr *a = &ex_attr_node(ex, nd)->a.xent;
  const int sm = nd->in[0], lab = nd->in[1], dl = nd->out[0];
  const int k = ex_t(ex, sm)->c;
  int bad = cpu_xent_bwd(ex->tp, ex->batch, k, ex_ptr(ex, sm), ex_ss(ex, sm), ex_labels(ex, lab),
                         ex_ss(ex, lab), a->smoothing, a->weight, ex_ptr(ex, dl), ex_ss(ex, dl),
                         ex_acc(nd, 0));
  return bad >= 0 ? ex_bad_label(ex, i, lab, bad, k) : 0;
}

// ---------------------------------------------------------------- dispatch
static int ex_step(CpuExec *ex, int i) {
  const IrNode *nd = &ex->g->nodes[i];
  ThreadPool *tp = ex->tp;
  const int x = nd->n_in ? nd->in[0] : -1, y = nd->n_out ? nd->out[0] : -1;
  switch (nd->kind) {
    case IR_INPUT:
    case IR_LABELS:
      return 0;
    case IR_CONV:
      run_conv(ex, nd);
      return 0;
    case IR_BN:
      run_bn(ex, nd);
      return 0;
    case IR_RELU:
      cpu_relu_fwd(tp, ex_n(ex, y), ex_numel(ex, y), ex_ptr(ex, x), ex_ss(ex, x), ex_ptr(ex, y),
                   ex_ss(ex, y));
      return 0;
    case IR_ADD:
      run_add(ex, nd);
      return 0;
    case IR_CONCAT:
      run_concat(ex, i, nd);
      return 0;
    case IR_POOL: {
      CpuPoolShape s = ex_pool_shape(ex, &nd->a.pool, x, y);
      cpu_pool_fwd(tp, &s, ex_ptr(ex, x), ex_ss(ex, x), ex_ptr(ex, y), ex_ss(ex, y));
      return 0;
    }
    case IR_GAP: {
      const IrTensor *t = ex_t(ex, x);
      cpu_gap_fwd(tp, ex->batch, t->c, t->h * t->w, ex_ptr(ex, x), ex_ss(ex, x), ex_ptr(ex, y),
                  ex_ss(ex, y), ex_acc(nd, 0));
      return 0;
    }
    case IR_LINEAR:
      run_linear(ex, nd);
      return 0;
    case IR_DROPOUT:
    case IR_DROPPATH:
      run_drop(ex, i, nd);
      return 0;
    case IR_XENT:
      return run_xent(ex, i, nd);
    case IR_CONV_BWD_DATA:
    case IR_CONV_BWD_FILTER:
      run_conv_bwd(ex, nd);
      return 0;
    case IR_BN_BWD:
      run_bn_bwd(ex, nd);
      return 0;
    case IR_RELU_BWD:
      cpu_relu_bwd(tp, ex_n(ex, y), ex_numel(ex, y), ex_ptr(ex, x), ex_ss(ex, x),
                   ex_ptr(ex, nd->in[1]), ex_ss(ex, nd->in[1]), ex_ptr(ex, y), ex_ss(ex, y),
                   ex_acc(nd, 0));
      return 0;
    case IR_POOL_BWD: {
      CpuPoolShape s = ex_pool_shape(ex, &ex_attr_node(ex, nd)->a.pool, x, nd->in[1]);
      const int dy = nd->in[2];
      cpu_pool_bwd(tp, &s, ex_ptr(ex, x), ex_ss(ex, x), ex_ptr(ex, dy), ex_ss(ex, dy), ex_ptr(ex, y),
                   ex_ss(ex, y), ex_acc(nd, 0));
      return 0;
    }
    case IR_GAP_BWD: {
      const IrTensor *t = ex_t(ex, y);
      cpu_gap_bwd(tp, ex->batch, t->c, t->h * t->w, ex_ptr(ex, x), ex_ss(ex, x), ex_ptr(ex, y),
                  ex_ss(ex, y), ex_acc(nd, 0));
      return 0;
    }
    case IR_LINEAR_BWD:
      run_linear_bwd(ex, nd);
      return 0;
    case IR_MASK_BWD: {
      const int dy = nd->in[1];
      cpu_mask_mul(tp, ex_n(ex, y), ex_numel(ex, y), ex_ptr(ex, dy), ex_ss(ex, dy), ex_ptr(ex, x),
                   ex_numel(ex, x), ex_ss(ex, x), ex_ptr(ex, y), ex_ss(ex, y), ex_acc(nd, 0));
      return 0;
    }
    case IR_XENT_BWD:
      return run_xent_bwd(ex, i, nd);
    case IR_ACCUM:
      cpu_copy(tp, ex_n(ex, y), ex_numel(ex, y), ex_ptr(ex, x), ex_ss(ex, x), ex_ptr(ex, y),
               ex_ss(ex, y), ex_acc(nd, 0));
      return 0;
    case IR_KIND_COUNT:
      break;
  }
  nao_internal("node %d '%s': kind %d reached the cpu dispatcher unchecked", i, nd->name,
               (int)nd->kind);
}

static double ex_now_ms(const CpuExec *ex) {
  struct timespec ts;
  clock_gettime(ex->prof_cpu_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int ex_writes_grads(const IrNode *nd) {
  return nd->kind == IR_CONV_BWD_FILTER || nd->kind == IR_BN_BWD || nd->kind == IR_LINEAR_BWD;
}

int cpu_exec_run(CpuExec *ex, int batch, const RunState *rs, float *params, float *grads,
                 float *buffers) {
  static const RunState eval_state = {0, 0, 0, 0};
  if (batch < 1 || batch > ex->max_batch) {
    snprintf(ex->err, sizeof ex->err, "batch %d outside [1, %d]", batch, ex->max_batch);
    return -1;
  }
  ex->batch = batch;
  ex->rs = rs ? rs : &eval_state;
  ex->params = params;
  ex->grads = grads;
  ex->buffers = buffers;
  for (int k = 0; k < ex->p->n_steps; k++) {
    int i = ex->p->steps[k];
    if (!grads && ex_writes_grads(&ex->g->nodes[i])) {
      snprintf(ex->err, sizeof ex->err, "node %d '%s' writes gradients but none were given", i,
               ex->g->nodes[i].name);
      return -1;
    }
    double t0 = ex->prof_ms ? ex_now_ms(ex) : 0.0;
    if (ex_step(ex, i)) return -1;
    if (ex->prof_ms) ex->prof_ms[k] += ex_now_ms(ex) - t0;
  }
  return 0;
}

void cpu_exec_set_conv_algo(CpuExec *ex, int algo) {
  ex->conv_algo = algo;
  size_t ws = 0;
  for (int k = 0; k < ex->p->n_steps; k++) {
    size_t w = ex_node_ws(ex, ex->p->steps[k]);
    if (w > ws) ws = w;
  }
  if (ws <= ex->ws_floats) return;
  free(ex->ws);
  ex->ws_floats = ws;
  ex->ws = ex_aligned(ws, "workspace");
}

void cpu_exec_set_profile(CpuExec *ex, double *ms, int cpu_clock) {
  ex->prof_ms = ms;
  ex->prof_cpu_clock = cpu_clock;
}

// ---------------------------------------------------------------- accessors
const char *cpu_exec_error(const CpuExec *ex) { return ex->err; }
ThreadPool *cpu_exec_pool(CpuExec *ex) { return ex->tp; }
int cpu_exec_max_batch(const CpuExec *ex) { return ex->max_batch; }

size_t cpu_exec_bytes(const CpuExec *ex) {
  return (ex->arena_floats + ex->fixed_floats + ex->ws_floats) * sizeof(float);
}

float *cpu_exec_tensor(CpuExec *ex, int t, int batch, size_t *sample_stride) {
  NAO_ASSERT(t >= 0 && t < ex->g->n_tensors && batch >= 1 && batch <= ex->max_batch);
  if (sample_stride) *sample_stride = ex_batched(ex_t(ex, t)) ? ex->p->loc[t].sample_stride : 0;
  return plan_tensor_ptr(ex->p, t, ex->arena, ex->fixed, batch);
}

void cpu_exec_set_input(CpuExec *ex, const float *x, int batch) {
  size_t ss;
  float *dst = cpu_exec_tensor(ex, ex->g->input, batch, &ss);
  size_t numel = ir_tensor_numel(ex_t(ex, ex->g->input));
  for (int n = 0; n < batch; n++)
    memcpy(dst + (size_t)n * ss, x + (size_t)n * numel, sizeof(float) * numel);
}

void cpu_exec_set_labels(CpuExec *ex, const int32_t *labels, int batch) {
  size_t ss;
  float *dst = cpu_exec_tensor(ex, ex->g->labels, batch, &ss);
  for (int n = 0; n < batch; n++) memcpy(dst + (size_t)n * ss, &labels[n], sizeof(int32_t));
}

void cpu_exec_read(CpuExec *ex, int t, int batch, float *out) {
  size_t ss;
  const float *src = cpu_exec_tensor(ex, t, batch, &ss);
  size_t numel = ir_tensor_numel(ex_t(ex, t));
  int n = ex_batched(ex_t(ex, t)) ? batch : 1;
  for (int i = 0; i < n; i++) memcpy(out + (size_t)i * numel, src + (size_t)i * ss, sizeof(float) * numel);
}

float cpu_exec_loss(CpuExec *ex) {
  if (ex->g->loss < 0) return 0.0f;
  return *plan_tensor_ptr(ex->p, ex->g->loss, ex->arena, ex->fixed, ex->batch ? ex->batch : 1);
}
