// tests/unit/cudnn_mock.c — cuDNN's convolution API on the CPU (cuda_mock.h):
// descriptors are checked as cuDNN checks them (shapes consistent, the output
// size the formula gives, memory ranges inside device allocations, a
// workspace as large as the algorithm needs), the convolutions run on the
// stream (recorded while capturing) with the CPU backend's kernels.
//
// Algorithms: the heuristics offer algorithm 1 (needs MOCK_WS bytes of
// workspace) then 0 (none); a search (Find*Ex) must not run while capturing,
// fills its output with NaN (cuDNN's search writes it) and picks 1 when the
// workspace given allows it. Counts of calls by math mode are kept so tests
// can check the TF32 policy.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/cpu_kernels.h"
#include "tests/unit/cuda_mock.h"

enum { MOCK_WS = 4096 };

struct DnnContextSt {
  CuStream stream;
};
struct DnnTensorSt {
  int n, c, h, w, ns, cs, hs, ws, set;
};
struct DnnFilterSt {
  int k, c, h, w, set;
};
struct DnnConvSt {
  int ph, pw, u, v, dh, dw, groups, math, set;
};

typedef struct {
  int op;  // 0 fwd, 1 data, 2 filter
  struct DnnTensorSt x, y;
  struct DnnFilterSt w;
  struct DnnConvSt c;
  float *xp, *wp, *yp;
  float beta;
} ConvJob;

// ---------------------------------------------------------------- descriptors

static size_t get_version(void) { return 91300; }
static const char *err_string(DnnStatus s) {
  switch (s) {
    case DNNAPI_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case DNNAPI_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case DNNAPI_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case DNNAPI_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
    default: return "CUDNN_STATUS_(mock)";
  }
}
static DnnStatus create(DnnHandle *h) {
  *h = xcalloc(1, sizeof **h);
  return 0;
}
static DnnStatus destroy(DnnHandle h) {
  free(h);
  return 0;
}
static DnnStatus set_stream(DnnHandle h, CuStream s) {
  h->stream = s;
  return 0;
}
static DnnStatus create_t(DnnTensorDesc *d) {
  *d = xcalloc(1, sizeof **d);
  return 0;
}
static DnnStatus set_t(DnnTensorDesc d, int dtype, int n, int c, int h, int w, int ns, int cs, int hs,
                       int ws) {
  if (dtype != DNNAPI_DATA_FLOAT || n < 1 || c < 1 || h < 1 || w < 1 || ns < 1 || cs < 1 || hs < 1 ||
      ws < 1)
    return DNNAPI_STATUS_BAD_PARAM;
  *d = (struct DnnTensorSt){n, c, h, w, ns, cs, hs, ws, 1};
  return 0;
}
static DnnStatus destroy_t(DnnTensorDesc d) {
  free(d);
  return 0;
}
static DnnStatus create_f(DnnFilterDesc *d) {
  *d = xcalloc(1, sizeof **d);
  return 0;
}
static DnnStatus set_f(DnnFilterDesc d, int dtype, int format, int k, int c, int h, int w) {
  if (dtype != DNNAPI_DATA_FLOAT || format != DNNAPI_TENSOR_NCHW || k < 1 || c < 1 || h < 1 || w < 1)
    return DNNAPI_STATUS_BAD_PARAM;
  *d = (struct DnnFilterSt){k, c, h, w, 1};
  return 0;
}
static DnnStatus destroy_f(DnnFilterDesc d) {
  free(d);
  return 0;
}
static DnnStatus create_c(DnnConvDesc *d) {
  *d = xcalloc(1, sizeof **d);
  (*d)->groups = 1;
  return 0;
}
static DnnStatus set_c(DnnConvDesc d, int ph, int pw, int u, int v, int dh, int dw, int mode, int ct) {
  if (ph < 0 || pw < 0 || u < 1 || v < 1 || dh != 1 || dw != 1 || mode != DNNAPI_CROSS_CORRELATION ||
      ct != DNNAPI_DATA_FLOAT)
    return DNNAPI_STATUS_BAD_PARAM;
  d->ph = ph, d->pw = pw, d->u = u, d->v = v, d->dh = dh, d->dw = dw, d->set = 1;
  return 0;
}
static DnnStatus set_groups(DnnConvDesc d, int g) {
  if (g < 1) return DNNAPI_STATUS_BAD_PARAM;
  d->groups = g;
  return 0;
}
static DnnStatus set_math(DnnConvDesc d, int m) {
  if (m != DNNAPI_DEFAULT_MATH && m != DNNAPI_FMA_MATH && m != DNNAPI_TENSOR_OP_MATH)
    return DNNAPI_STATUS_BAD_PARAM;
  d->math = m;
  return 0;
}
static DnnStatus destroy_c(DnnConvDesc d) {
  free(d);
  return 0;
}

static DnnStatus out_dim(DnnConvDesc c, DnnTensorDesc x, DnnFilterDesc w, int *n, int *ch, int *h, int *wd) {
  if (!c->set || !x->set || !w->set || x->c != w->c * c->groups || w->k % c->groups)
    return DNNAPI_STATUS_BAD_PARAM;
  *n = x->n;
  *ch = w->k;
  *h = (x->h + 2 * c->ph - w->h) / c->u + 1;
  *wd = (x->w + 2 * c->pw - w->w) / c->v + 1;
  return *h >= 1 && *wd >= 1 ? 0 : DNNAPI_STATUS_BAD_PARAM;
}

// The descriptors agree with each other (x -> y through w and c).
static int consistent(DnnTensorDesc x, DnnFilterDesc w, DnnConvDesc c, DnnTensorDesc y, const char *call) {
  int n, ch, h, wd;
  if (out_dim(c, x, w, &n, &ch, &h, &wd) || !y->set || y->n != n || y->c != ch || y->h != h || y->w != wd) {
    cuda_mock_violate("%s: descriptors disagree (x %dx%dx%dx%d, w %dx%dx%dx%d, y %dx%dx%dx%d)", call,
                      x->n, x->c, x->h, x->w, w->k, w->c, w->h, w->w, y->n, y->c, y->h, y->w);
    return 0;
  }
  return 1;
}

static size_t t_extent(const struct DnnTensorSt *t) {
  return 4 * ((size_t)(t->n - 1) * t->ns + (size_t)(t->c - 1) * t->cs + (size_t)(t->h - 1) * t->hs +
              (size_t)(t->w - 1) * t->ws + 1);
}
static size_t f_bytes(const struct DnnFilterSt *f) { return 4 * (size_t)f->k * f->c * f->h * f->w; }

static int mem_ok(const void *x, const struct DnnTensorSt *xt, const void *w,
                  const struct DnnFilterSt *wf, const void *y, const struct DnnTensorSt *yt,
                  const void *ws, size_t ws_bytes, const char *call) {
  char what[120];
  snprintf(what, sizeof what, "%s x", call);
  if (!cuda_mock_in_memory(x, t_extent(xt), what)) return 0;
  snprintf(what, sizeof what, "%s w", call);
  if (!cuda_mock_in_memory(w, f_bytes(wf), what)) return 0;
  snprintf(what, sizeof what, "%s y", call);
  if (!cuda_mock_in_memory(y, t_extent(yt), what)) return 0;
  snprintf(what, sizeof what, "%s workspace", call);
  return ws_bytes == 0 || cuda_mock_in_memory(ws, ws_bytes, what);
}

// ---------------------------------------------------------------- algorithms

static void offer(int *returned, DnnAlgoPerf *perf, int requested, int measured) {
  DnnAlgoPerf a = {.algo = 1, .status = 0, .time = measured ? 0.5f : -1.0f, .memory = MOCK_WS};
  DnnAlgoPerf b = {.algo = 0, .status = 0, .time = measured ? 0.9f : -1.0f, .memory = 0};
  int n = 0;
  if (n < requested) perf[n++] = a;
  if (n < requested) perf[n++] = b;
  *returned = n;
}

static void fill_nan_t(void *p, const struct DnnTensorSt *t) {
  float *f = p;
  for (int n = 0; n < t->n; n++)
    for (int c = 0; c < t->c; c++)
      for (int h = 0; h < t->h; h++)
        for (int w = 0; w < t->w; w++)
          f[(size_t)n * t->ns + (size_t)c * t->cs + (size_t)h * t->hs + (size_t)w * t->ws] = NAN;
}

static DnnStatus find_common(DnnHandle h, int requested, int *returned, DnnAlgoPerf *perf, size_t ws) {
  if (cuda_mock_capturing(h->stream)) {
    cuda_mock_violate("a cuDNN algorithm search while the stream captures a graph");
    return DNNAPI_STATUS_NOT_SUPPORTED;
  }
  cuda_mock_stats_rw()->finds++;
  offer(returned, perf, requested, 1);
  if (ws < MOCK_WS && *returned > 1) {  // algorithm 1 does not fit: cuDNN reports it failing
    perf[0].status = DNNAPI_STATUS_NOT_SUPPORTED;
  }
  return 0;
}

static DnnStatus get_fwd(DnnHandle h, DnnTensorDesc x, DnnFilterDesc w, DnnConvDesc c, DnnTensorDesc y,
                         int req, int *ret, DnnAlgoPerf *perf) {
  (void)h;
  if (!consistent(x, w, c, y, "cudnnGetConvolutionForwardAlgorithm_v7")) return DNNAPI_STATUS_BAD_PARAM;
  offer(ret, perf, req, 0);
  return 0;
}
static DnnStatus find_fwd(DnnHandle h, DnnTensorDesc x, const void *xp, DnnFilterDesc w, const void *wp,
                          DnnConvDesc c, DnnTensorDesc y, void *yp, int req, int *ret, DnnAlgoPerf *perf,
                          void *ws, size_t wsb) {
  const char *call = "cudnnFindConvolutionForwardAlgorithmEx";
  if (!consistent(x, w, c, y, call) || !mem_ok(xp, x, wp, w, yp, y, ws, wsb, call))
    return DNNAPI_STATUS_BAD_PARAM;
  DnnStatus s = find_common(h, req, ret, perf, wsb);
  if (!s) fill_nan_t(yp, y);
  return s;
}
static DnnStatus get_data(DnnHandle h, DnnFilterDesc w, DnnTensorDesc dy, DnnConvDesc c, DnnTensorDesc dx,
                          int req, int *ret, DnnAlgoPerf *perf) {
  (void)h;
  if (!consistent(dx, w, c, dy, "cudnnGetConvolutionBackwardDataAlgorithm_v7")) return DNNAPI_STATUS_BAD_PARAM;
  offer(ret, perf, req, 0);
  return 0;
}
static DnnStatus find_data(DnnHandle h, DnnFilterDesc w, const void *wp, DnnTensorDesc dy, const void *dyp,
                           DnnConvDesc c, DnnTensorDesc dx, void *dxp, int req, int *ret,
                           DnnAlgoPerf *perf, void *ws, size_t wsb) {
  const char *call = "cudnnFindConvolutionBackwardDataAlgorithmEx";
  if (!consistent(dx, w, c, dy, call) || !mem_ok(dxp, dx, wp, w, dyp, dy, ws, wsb, call))
    return DNNAPI_STATUS_BAD_PARAM;
  DnnStatus s = find_common(h, req, ret, perf, wsb);
  if (!s) fill_nan_t(dxp, dx);
  return s;
}
static DnnStatus get_filter(DnnHandle h, DnnTensorDesc x, DnnTensorDesc dy, DnnConvDesc c, DnnFilterDesc dw,
                            int req, int *ret, DnnAlgoPerf *perf) {
  (void)h;
  if (!consistent(x, dw, c, dy, "cudnnGetConvolutionBackwardFilterAlgorithm_v7")) return DNNAPI_STATUS_BAD_PARAM;
  offer(ret, perf, req, 0);
  return 0;
}
static DnnStatus find_filter(DnnHandle h, DnnTensorDesc x, const void *xp, DnnTensorDesc dy, const void *dyp,
                             DnnConvDesc c, DnnFilterDesc dw, void *dwp, int req, int *ret,
                             DnnAlgoPerf *perf, void *ws, size_t wsb) {
  const char *call = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
  if (!consistent(x, dw, c, dy, call) || !mem_ok(xp, x, dwp, dw, dyp, dy, ws, wsb, call))
    return DNNAPI_STATUS_BAD_PARAM;
  DnnStatus s = find_common(h, req, ret, perf, wsb);
  if (!s)
    for (size_t i = 0; i < f_bytes(dw) / 4; i++) ((float *)dwp)[i] = NAN;
  return s;
}
static DnnStatus ws_size(int algo, size_t *b) {
  if (algo != 0 && algo != 1) return DNNAPI_STATUS_BAD_PARAM;
  *b = algo == 1 ? MOCK_WS : 0;
  return 0;
}
static DnnStatus ws_fwd(DnnHandle h, DnnTensorDesc x, DnnFilterDesc w, DnnConvDesc c, DnnTensorDesc y,
                        int algo, size_t *b) {
  (void)h, (void)x, (void)w, (void)c, (void)y;
  return ws_size(algo, b);
}
static DnnStatus ws_data(DnnHandle h, DnnFilterDesc w, DnnTensorDesc dy, DnnConvDesc c, DnnTensorDesc dx,
                         int algo, size_t *b) {
  (void)h, (void)w, (void)dy, (void)c, (void)dx;
  return ws_size(algo, b);
}
static DnnStatus ws_filter(DnnHandle h, DnnTensorDesc x, DnnTensorDesc dy, DnnConvDesc c, DnnFilterDesc dw,
                           int algo, size_t *b) {
  (void)h, (void)x, (void)dy, (void)c, (void)dw;
  return ws_size(algo, b);
}

// ---------------------------------------------------------------- execution

static int dense(const struct DnnTensorSt *t) { return t->ws == 1 && t->hs == t->w && t->cs == t->h * t->w; }

// Dense copy (n, c*h*w) of a strided tensor, or back.
static void gather(float *dst, const float *src, const struct DnnTensorSt *t, int back) {
  size_t i = 0;
  for (int n = 0; n < t->n; n++)
    for (int c = 0; c < t->c; c++)
      for (int h = 0; h < t->h; h++)
        for (int w = 0; w < t->w; w++, i++) {
          size_t o = (size_t)n * t->ns + (size_t)c * t->cs + (size_t)h * t->hs + (size_t)w * t->ws;
          if (back) ((float *)src)[o] = dst[i];
          else dst[i] = src[o];
        }
}

static void run_conv(const void *payload) {
  const ConvJob *j = payload;
  CpuConvShape s = {.n = j->x.n, .ci = j->x.c, .h = j->x.h, .w = j->x.w, .co = j->y.c, .oh = j->y.h,
                    .ow = j->y.w, .kh = j->w.h, .kw = j->w.w, .sh = j->c.u, .sw = j->c.v,
                    .pt = j->c.ph, .pl = j->c.pw, .groups = j->c.groups};
  size_t xn = (size_t)j->x.c * j->x.h * j->x.w, yn = (size_t)j->y.c * j->y.h * j->y.w;
  int xd = dense(&j->x), yd = dense(&j->y);
  float *x = xd ? j->xp : xmalloc(4 * xn * (size_t)j->x.n);
  float *y = yd ? j->yp : xmalloc(4 * yn * (size_t)j->y.n);
  size_t xss = xd ? (size_t)j->x.ns : xn, yss = yd ? (size_t)j->y.ns : yn;
  int acc = j->beta != 0.0f;
  CpuConvOp op = j->op == 0 ? CPU_CONV_FWD : j->op == 1 ? CPU_CONV_BWD_DATA : CPU_CONV_BWD_FILTER;
  float *ws = xmalloc(4 * (cpu_conv_ws_floats(&s, op, 1) + 1));
  if (!xd && (j->op != 1 || acc)) gather(x, j->xp, &j->x, 0);
  if (!yd && (j->op != 0 || acc)) gather(y, j->yp, &j->y, 0);
  if (j->op == 0) cpu_conv_fwd(NULL, &s, x, xss, j->wp, y, yss, acc, ws);
  else if (j->op == 1) cpu_conv_bwd_data(NULL, &s, y, yss, j->wp, x, xss, acc, ws);
  else cpu_conv_bwd_filter(NULL, &s, x, xss, y, yss, j->wp, acc, ws);
  if (!yd && j->op == 0) gather(y, j->yp, &j->y, 1);
  if (!xd && j->op == 1) gather(x, j->xp, &j->x, 1);
  if (!xd) free(x);
  if (!yd) free(y);
  free(ws);
}

static DnnStatus conv_common(DnnHandle h, int op, const float *alpha, DnnTensorDesc x, const void *xp,
                             DnnFilterDesc w, const void *wp, DnnConvDesc c, int algo, void *ws,
                             size_t wsb, const float *beta, DnnTensorDesc y, const void *yp,
                             const char *call) {
  if (*alpha != 1.0f || (*beta != 0.0f && *beta != 1.0f)) {
    cuda_mock_violate("%s: alpha %g, beta %g (the mock runs alpha 1, beta 0 or 1)", call, *alpha, *beta);
    return DNNAPI_STATUS_NOT_SUPPORTED;
  }
  size_t need = 0;
  if (ws_size(algo, &need) || wsb < need) {
    cuda_mock_violate("%s: algorithm %d with a %zu-byte workspace", call, algo, wsb);
    return DNNAPI_STATUS_BAD_PARAM;
  }
  if (!consistent(x, w, c, y, call) || !mem_ok(xp, x, wp, w, yp, y, ws, wsb, call))
    return DNNAPI_STATUS_BAD_PARAM;
  if (c->math == DNNAPI_FMA_MATH) cuda_mock_stats_rw()->conv_fma++;
  else cuda_mock_stats_rw()->conv_tf32++;
  ConvJob j = {op, *x, *y, *w, *c, (float *)xp, (float *)wp, (float *)yp, *beta};
  CuResult r = cuda_mock_enqueue(h->stream, run_conv, &j, sizeof j);
  return r ? DNNAPI_STATUS_EXECUTION_FAILED : 0;
}

static DnnStatus conv_fwd(DnnHandle h, const void *alpha, DnnTensorDesc x, const void *xp, DnnFilterDesc w,
                          const void *wp, DnnConvDesc c, int algo, void *ws, size_t wsb, const void *beta,
                          DnnTensorDesc y, void *yp) {
  return conv_common(h, 0, alpha, x, xp, w, wp, c, algo, ws, wsb, beta, y, yp, "cudnnConvolutionForward");
}
static DnnStatus conv_data(DnnHandle h, const void *alpha, DnnFilterDesc w, const void *wp, DnnTensorDesc dy,
                           const void *dyp, DnnConvDesc c, int algo, void *ws, size_t wsb,
                           const void *beta, DnnTensorDesc dx, void *dxp) {
  return conv_common(h, 1, alpha, dx, dxp, w, wp, c, algo, ws, wsb, beta, dy, dyp,
                     "cudnnConvolutionBackwardData");
}
static DnnStatus conv_filter(DnnHandle h, const void *alpha, DnnTensorDesc x, const void *xp,
                             DnnTensorDesc dy, const void *dyp, DnnConvDesc c, int algo, void *ws,
                             size_t wsb, const void *beta, DnnFilterDesc dw, void *dwp) {
  return conv_common(h, 2, alpha, x, xp, dw, dwp, c, algo, ws, wsb, beta, dy, dyp,
                     "cudnnConvolutionBackwardFilter");
}

static const CudnnApi mock_dnn = {
    .name = "mock cuDNN",
    .get_version = get_version,
    .get_error_string = err_string,
    .get_last_error_string = NULL,
    .create = create,
    .destroy = destroy,
    .set_stream = set_stream,
    .create_tensor_desc = create_t,
    .set_tensor_4d_ex = set_t,
    .destroy_tensor_desc = destroy_t,
    .create_filter_desc = create_f,
    .set_filter_4d = set_f,
    .destroy_filter_desc = destroy_f,
    .create_conv_desc = create_c,
    .set_conv_2d = set_c,
    .set_conv_group_count = set_groups,
    .set_conv_math_type = set_math,
    .destroy_conv_desc = destroy_c,
    .get_conv_2d_fwd_output_dim = out_dim,
    .get_fwd_algo_v7 = get_fwd,
    .find_fwd_algo_ex = find_fwd,
    .get_fwd_ws = ws_fwd,
    .conv_fwd = conv_fwd,
    .get_bwd_data_algo_v7 = get_data,
    .find_bwd_data_algo_ex = find_data,
    .get_bwd_data_ws = ws_data,
    .conv_bwd_data = conv_data,
    .get_bwd_filter_algo_v7 = get_filter,
    .find_bwd_filter_algo_ex = find_filter,
    .get_bwd_filter_ws = ws_filter,
    .conv_bwd_filter = conv_filter,
};

const CudnnApi *cudnn_mock_api(void) { return &mock_dnn; }
