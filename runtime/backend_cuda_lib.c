// runtime/backend_cuda_lib.c — the library steps of the cuda runtime: cuDNN
// convolutions (descriptors per batch size, the algorithm chosen once per
// descriptor and batch size, one shared workspace) and cuBLAS GEMMs.
//
// Algorithm choice: cudnnFind*Ex (measured, with the workspace reserve as its
// limit) for the main batch sizes when conv_search is AUTO or FIND, cuDNN's
// heuristics (cudnnGet*_v7) otherwise. Choices are kept in memory by the
// descriptor's text (so repeated shapes are searched once) and in the cache
// folder, in one file per device, cuDNN version and math mode, loaded at start
// and rewritten (merged) at the end.
//
// Math: convolutions use CUDNN_DEFAULT_MATH (TF32 allowed, PyTorch's default)
// when their descriptor says tf32 and the runtime allows it, else
// CUDNN_FMA_MATH (plain float32); GEMMs use CUBLAS_TF32_TENSOR_OP_MATH only
// when their descriptor says tf32 (the 1x1 convolutions), else
// CUBLAS_DEFAULT_MATH (PyTorch keeps float32 matmuls in float32).
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/backend_cuda_int.h"

#define DNN(call, name, what)                                                        \
  do {                                                                               \
    DnnStatus s_ = (call);                                                           \
    if (s_ != DNNAPI_STATUS_SUCCESS)                                                 \
      return cudnn_api_fail(rt->dnn, s_, name, what, rt->err, sizeof rt->err);       \
  } while (0)

#define BLAS(call, name, what)                                                       \
  do {                                                                               \
    BlasStatus s_ = (call);                                                          \
    if (s_ != BLASAPI_STATUS_SUCCESS)                                                \
      return cublas_api_fail(rt->blas, s_, name, what, rt->err, sizeof rt->err);     \
  } while (0)

size_t lib_ws_reserve(const CudaRt *rt, size_t free_bytes) {
  if (!rt->need_dnn) return 0;
  size_t r = free_bytes / 16;
  size_t lo = (size_t)64 << 20, hi = (size_t)1 << 30;
  return r < lo ? lo : r > hi ? hi : r;
}

int lib_open(CudaRt *rt) {
  if (rt->need_dnn) {
    if (rt->opt.dnn) {
      rt->dnn = rt->opt.dnn;
    } else {
      char e[3000];
      if (cudnn_api_load(&rt->dnn_own, &rt->dnn_lib, e, sizeof e)) {
        snprintf(rt->err, sizeof rt->err, "the network's convolutions need cuDNN: %s", e);
        return -1;
      }
      rt->dnn = &rt->dnn_own;
    }
    DNN(rt->dnn->create(&rt->dnn_h), "cudnnCreate", "creating the cuDNN handle");
    DNN(rt->dnn->set_stream(rt->dnn_h, rt->stream), "cudnnSetStream", "binding cuDNN to the stream");
    size_t v = rt->dnn->get_version();
    snprintf(rt->info.cudnn, sizeof rt->info.cudnn, "cuDNN %zu.%zu.%zu (%s)", v / 10000,
             (v / 100) % 100, v % 100, rt->dnn->name);
  }
  if (rt->need_blas) {
    if (rt->opt.blas) {
      rt->blas = rt->opt.blas;
    } else {
      char e[3000];
      if (cublas_api_load(&rt->blas_own, &rt->blas_lib, e, sizeof e)) {
        snprintf(rt->err, sizeof rt->err, "the network's matrix products need cuBLAS: %s", e);
        return -1;
      }
      rt->blas = &rt->blas_own;
    }
    BLAS(rt->blas->create(&rt->blas_h), "cublasCreate", "creating the cuBLAS handle");
    BLAS(rt->blas->set_stream(rt->blas_h, rt->stream), "cublasSetStream",
         "binding cuBLAS to the stream");
    BLAS(rt->blas->set_pointer_mode(rt->blas_h, BLASAPI_POINTER_MODE_HOST), "cublasSetPointerMode",
         "setting host scalars");
    int v = 0;
    BLAS(rt->blas->get_version(rt->blas_h, &v), "cublasGetVersion", "reading cuBLAS's version");
    snprintf(rt->info.cublas, sizeof rt->info.cublas, "cuBLAS %d.%d.%d (%s)", v / 10000,
             (v / 100) % 100, v % 100, rt->blas->name);
    rt->blas_ws_bytes = (size_t)32 << 20;  // NVIDIA's advice for Hopper; set explicitly so
                                           // that graph capture never allocates
  }
  return 0;
}

void lib_close(CudaRt *rt) {
  if (rt->dnn && rt->dnn_h) rt->dnn->destroy(rt->dnn_h);
  if (rt->blas && rt->blas_h) rt->blas->destroy(rt->blas_h);
  rt->dnn_h = NULL;
  rt->blas_h = NULL;
  if (rt->dnn_lib.handle) cuda_lib_close(&rt->dnn_lib);
  if (rt->blas_lib.handle) cuda_lib_close(&rt->blas_lib);
}

// ---------------------------------------------------------------- algorithm cache

static const char *kind_tag(CudaStepKind k) {
  return k == CUDA_STEP_CONV_FWD ? "fwd" : k == CUDA_STEP_CONV_BWD_DATA ? "data" : "filter";
}

static void conv_key(char *out, size_t n, CudaStepKind kind, const CudaConvDesc *d, int batch,
                     int math) {
  snprintf(out, n, "%s n%d x%d,%d,%d/%lld,%lld,%lld y%d,%d,%d/%lld k%dx%d s%d,%d g%d p%d,%d m%d",
           kind_tag(kind), batch, d->c_in, d->h_in, d->w_in, d->x_ns, d->x_cs, d->x_hs, d->c_out,
           d->h_out, d->w_out, d->y_ns, d->kh, d->kw, d->stride_h, d->stride_w, d->groups,
           d->pad_h, d->pad_w, math);
}

static AlgoEntry *algo_find(CudaRt *rt, const char *key) {
  for (int i = 0; i < rt->n_algos; i++)
    if (strcmp(rt->algos[i].key, key) == 0) return &rt->algos[i];
  return NULL;
}

static AlgoEntry *algo_add(CudaRt *rt, const char *key, int algo, size_t ws, int measured) {
  AlgoEntry *e = algo_find(rt, key);
  if (!e) {
    if (rt->n_algos == rt->cap_algos) {
      rt->cap_algos = rt->cap_algos ? 2 * rt->cap_algos : 64;
      rt->algos = xrealloc(rt->algos, sizeof *rt->algos * (size_t)rt->cap_algos);
    }
    e = &rt->algos[rt->n_algos++];
    e->key = xstrdup(key);
  }
  e->algo = algo;
  e->ws = ws;
  e->measured = measured;
  return e;
}

static void algo_file(CudaRt *rt, char *path, size_t n) {
  char id[1400];
  snprintf(id, sizeof id, "%s|%d.%d|%s|tf32 %d", rt->info.device_name, rt->info.cc_major,
           rt->info.cc_minor, rt->info.cudnn, rt->opt.tf32);
  KCacheKey k;
  kcache_key_bytes(&k, id, strlen(id));
  snprintf(path, n, "%s/cudnn-%.16s.algos", rt->cache.dir, k.hex);
}

// Lines "algo ws measured key..." (the key is the rest of the line).
static void algo_parse(CudaRt *rt, const char *text, int overwrite) {
  for (const char *line = text; line && *line;) {
    const char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    char buf[512];
    if (len < sizeof buf) {
      memcpy(buf, line, len);
      buf[len] = '\0';
      int algo, measured, used = 0;
      unsigned long long ws;
      if (sscanf(buf, "%d %llu %d %n", &algo, &ws, &measured, &used) == 3 && used > 0 &&
          buf[used] && (overwrite || !algo_find(rt, buf + used)))
        algo_add(rt, buf + used, algo, (size_t)ws, measured);
    }
    line = nl ? nl + 1 : NULL;
  }
}

void lib_algo_load(CudaRt *rt) {
  if (!rt->cache.enabled || !rt->need_dnn) return;
  char path[1200];
  algo_file(rt, path, sizeof path);
  size_t n;
  const char *why;
  char *text = nao_read_file(path, &n, &why);
  if (!text) return;
  algo_parse(rt, text, 1);
  free(text);
}

void lib_algo_save(CudaRt *rt) {
  if (!rt->cache.enabled || !rt->algos_dirty) return;
  char path[1200];
  algo_file(rt, path, sizeof path);
  size_t n;
  const char *why;
  char *text = nao_read_file(path, &n, &why);  // merge what another run wrote meanwhile
  if (text) algo_parse(rt, text, 0);
  free(text);
  StrBuf sb = {0};
  for (int i = 0; i < rt->n_algos; i++)
    sb_printf(&sb, "%d %llu %d %s\n", rt->algos[i].algo, (unsigned long long)rt->algos[i].ws,
              rt->algos[i].measured, rt->algos[i].key);
  char tmp[1300];
  snprintf(tmp, sizeof tmp, "%s.tmp.%p", path, (void *)rt);
  FILE *f = fopen(tmp, "w");
  int ok = f && fwrite(sb.data ? sb.data : "", 1, sb.len, f) == sb.len;
  if (f && fclose(f) != 0) ok = 0;
  if (ok && rename(tmp, path) != 0) ok = 0;
  if (!ok) {
    remove(tmp);
    if (rt->opt.verbose) fprintf(stderr, "naoc: warning: cannot write %s\n", path);
  }
  sb_free(&sb);
  rt->algos_dirty = 0;
}

// ---------------------------------------------------------------- convolution plans

static int fits_int(long long v) { return v >= 0 && v <= INT_MAX; }

static int conv_math(const CudaRt *rt, const CudaConvDesc *d) {
  return d->tf32 && rt->opt.tf32 != 0 ? DNNAPI_DEFAULT_MATH : DNNAPI_FMA_MATH;
}

// Descriptors of a convolution step at batch n.
static int conv_descs(CudaRt *rt, const CudaProgram *p, const CudaStep *st, int n, ConvPlan *cp) {
  const CudaConvDesc *d = &p->convs[st->desc];
  const char *node = st->node >= 0 ? p->nodes[st->node].name : "?";
  char what[300];
  snprintf(what, sizeof what, "describing convolution %s (%s) for cuDNN", node, kind_tag(st->kind));
  if (!fits_int(d->x_ns) || !fits_int(d->x_cs) || !fits_int(d->x_hs) || !fits_int(d->y_ns) ||
      d->groups < 1 || d->c_in % d->groups || d->c_out % d->groups) {
    snprintf(rt->err, sizeof rt->err, "convolution %s: its descriptor is out of range for cuDNN", node);
    return -1;
  }
  DNN(rt->dnn->create_tensor_desc(&cp->x), "cudnnCreateTensorDescriptor", what);
  DNN(rt->dnn->create_tensor_desc(&cp->y), "cudnnCreateTensorDescriptor", what);
  DNN(rt->dnn->create_filter_desc(&cp->w), "cudnnCreateFilterDescriptor", what);
  DNN(rt->dnn->create_conv_desc(&cp->conv), "cudnnCreateConvolutionDescriptor", what);
  DNN(rt->dnn->set_tensor_4d_ex(cp->x, DNNAPI_DATA_FLOAT, n, d->c_in, d->h_in, d->w_in, (int)d->x_ns,
                                (int)d->x_cs, (int)d->x_hs, 1),
      "cudnnSetTensor4dDescriptorEx", what);
  DNN(rt->dnn->set_tensor_4d_ex(cp->y, DNNAPI_DATA_FLOAT, n, d->c_out, d->h_out, d->w_out,
                                (int)d->y_ns, d->h_out * d->w_out, d->w_out, 1),
      "cudnnSetTensor4dDescriptorEx", what);
  DNN(rt->dnn->set_filter_4d(cp->w, DNNAPI_DATA_FLOAT, DNNAPI_TENSOR_NCHW, d->c_out,
                             d->c_in / d->groups, d->kh, d->kw),
      "cudnnSetFilter4dDescriptor", what);
  DNN(rt->dnn->set_conv_2d(cp->conv, d->pad_h, d->pad_w, d->stride_h, d->stride_w, 1, 1,
                           DNNAPI_CROSS_CORRELATION, DNNAPI_DATA_FLOAT),
      "cudnnSetConvolution2dDescriptor", what);
  DNN(rt->dnn->set_conv_group_count(cp->conv, d->groups), "cudnnSetConvolutionGroupCount", what);
  DNN(rt->dnn->set_conv_math_type(cp->conv, conv_math(rt, d)), "cudnnSetConvolutionMathType", what);
  int on, oc, oh, ow;
  DNN(rt->dnn->get_conv_2d_fwd_output_dim(cp->conv, cp->x, cp->w, &on, &oc, &oh, &ow),
      "cudnnGetConvolution2dForwardOutputDim", what);
  if (on != n || oc != d->c_out || oh != d->h_out || ow != d->w_out) {
    snprintf(rt->err, sizeof rt->err,
             "convolution %s: cuDNN computes a %dx%dx%dx%d output for its descriptors, the plan "
             "has %dx%dx%dx%d%s",
             node, on, oc, oh, ow, n, d->c_out, d->h_out, d->w_out,
             d->asymmetric ? " (its padding is asymmetric, which cuDNN's legacy API cannot express)"
                           : "");
    return -1;
  }
  return 0;
}

static int pick(const DnnAlgoPerf *perf, int count, size_t limit) {
  for (int i = 0; i < count; i++)
    if (perf[i].status == DNNAPI_STATUS_SUCCESS && perf[i].memory <= limit) return i;
  return -1;
}

// Chooses the algorithm of cp (descriptors made) for step st with the step's
// addresses a (Find runs the convolution on them).
static int conv_choose(CudaRt *rt, const CudaProgram *p, const CudaStep *st, int n,
                       const CuDevptr *a, ConvPlan *cp, int measure, CuDevptr ws, size_t ws_limit) {
  const CudaConvDesc *d = &p->convs[st->desc];
  char key[400];
  conv_key(key, sizeof key, st->kind, d, n, conv_math(rt, d));
  AlgoEntry *e = algo_find(rt, key);
  if (e && (e->measured || !measure) && e->ws <= ws_limit) {
    cp->algo = e->algo;
    cp->ws = e->ws;
    rt->info.conv_cached++;
    return 0;
  }
  enum { MAXP = 16 };
  DnnAlgoPerf perf[MAXP];
  memset(perf, 0, sizeof perf);
  int got = 0;
  const char *node = st->node >= 0 ? p->nodes[st->node].name : "?";
  char what[300];
  snprintf(what, sizeof what, "choosing the algorithm of convolution %s (%s, batch %d)", node,
           kind_tag(st->kind), n);
  void *wsp = (void *)(uintptr_t)ws;
  void *pa = (void *)(uintptr_t)a[0], *pb = (void *)(uintptr_t)a[1], *pc = (void *)(uintptr_t)a[2];
  size_t xo = 4 * (size_t)d->x_offset;
  if (st->kind == CUDA_STEP_CONV_FWD) {
    if (measure)
      DNN(rt->dnn->find_fwd_algo_ex(rt->dnn_h, cp->x, (char *)pa + xo, cp->w, pb, cp->conv, cp->y,
                                    pc, MAXP, &got, perf, wsp, ws_limit),
          "cudnnFindConvolutionForwardAlgorithmEx", what);
    else
      DNN(rt->dnn->get_fwd_algo_v7(rt->dnn_h, cp->x, cp->w, cp->conv, cp->y, MAXP, &got, perf),
          "cudnnGetConvolutionForwardAlgorithm_v7", what);
  } else if (st->kind == CUDA_STEP_CONV_BWD_DATA) {
    if (measure)
      DNN(rt->dnn->find_bwd_data_algo_ex(rt->dnn_h, cp->w, pb, cp->y, pa, cp->conv, cp->x,
                                         (char *)pc + xo, MAXP, &got, perf, wsp, ws_limit),
          "cudnnFindConvolutionBackwardDataAlgorithmEx", what);
    else
      DNN(rt->dnn->get_bwd_data_algo_v7(rt->dnn_h, cp->w, cp->y, cp->conv, cp->x, MAXP, &got, perf),
          "cudnnGetConvolutionBackwardDataAlgorithm_v7", what);
  } else {
    if (measure)
      DNN(rt->dnn->find_bwd_filter_algo_ex(rt->dnn_h, cp->x, (char *)pa + xo, cp->y, pb, cp->conv,
                                           cp->w, pc, MAXP, &got, perf, wsp, ws_limit),
          "cudnnFindConvolutionBackwardFilterAlgorithmEx", what);
    else
      DNN(rt->dnn->get_bwd_filter_algo_v7(rt->dnn_h, cp->x, cp->y, cp->conv, cp->w, MAXP, &got,
                                          perf),
          "cudnnGetConvolutionBackwardFilterAlgorithm_v7", what);
  }
  int i = pick(perf, got < MAXP ? got : MAXP, ws_limit);
  if (i < 0) {
    snprintf(rt->err, sizeof rt->err,
             "convolution %s (%s, batch %d): cuDNN offers no algorithm within a %zu-byte "
             "workspace (%d candidates)",
             node, kind_tag(st->kind), n, ws_limit, got);
    return -1;
  }
  cp->algo = perf[i].algo;
  cp->ws = perf[i].memory;
  algo_add(rt, key, cp->algo, cp->ws, measure);
  rt->algos_dirty = 1;
  if (measure) rt->info.conv_searches++;
  else rt->info.conv_heuristics++;
  return 0;
}

static void free_conv(CudaRt *rt, ConvPlan *cp) {
  if (cp->x) rt->dnn->destroy_tensor_desc(cp->x);
  if (cp->y) rt->dnn->destroy_tensor_desc(cp->y);
  if (cp->w) rt->dnn->destroy_filter_desc(cp->w);
  if (cp->conv) rt->dnn->destroy_conv_desc(cp->conv);
  memset(cp, 0, sizeof *cp);
}

void lib_free_batch(CudaRt *rt, Seq *s, SeqBatch *b) {
  if (!b->conv) return;
  for (int i = 0; i < s->n_ops; i++) free_conv(rt, &b->conv[i]);
  free(b->conv);
  b->conv = NULL;
}

int lib_plan_convs(CudaRt *rt, Seq *s, SeqBatch *b, int main_batch) {
  int any = 0;
  for (int i = 0; i < s->n_ops; i++) {
    const SeqOp *op = &s->ops[i];
    if (op->prog < 0) continue;
    CudaStepKind k = rt->progs[op->prog].p->steps[op->step].kind;
    any |= k != CUDA_STEP_KERNEL && k != CUDA_STEP_GEMM;
  }
  if (!any) return 0;
  b->conv = xcalloc((size_t)s->n_ops, sizeof *b->conv);
  int measure = rt->opt.conv_search == CUDA_CONV_FIND ||
                (rt->opt.conv_search == CUDA_CONV_AUTO && main_batch);
  size_t limit = lib_ws_reserve(rt, rt->info.free_mem_at_start);
  CuDevptr tmp = 0;
  if (measure) {  // a temporary workspace of the reserve's size for the search
    if (rt->ws_bytes >= limit) tmp = rt->ws;
    else if (!(tmp = rt_alloc(rt, limit, "cuDNN's algorithm search"))) return -1;
  }
  int rc = 0;
  size_t need = 0;
  for (int i = 0; i < s->n_ops && !rc; i++) {
    const SeqOp *op = &s->ops[i];
    if (op->prog < 0) continue;
    const CudaProgram *p = rt->progs[op->prog].p;
    const CudaStep *st = &p->steps[op->step];
    if (st->kind == CUDA_STEP_KERNEL || st->kind == CUDA_STEP_GEMM) continue;
    rc = conv_descs(rt, p, st, b->n, &b->conv[i]);
    if (!rc) rc = conv_choose(rt, p, st, b->n, b->lib[i], &b->conv[i], measure, tmp, limit);
    if (!rc && b->conv[i].ws > need) need = b->conv[i].ws;
    b->conv[i].ready = !rc;
  }
  if (tmp && tmp != rt->ws) rt_free(rt, tmp);
  if (rc) return -1;
  if (need > rt->ws_bytes) {  // grow the shared workspace; graphs that saw the old one go
    if (rt->ws) rt_free(rt, rt->ws);
    rt->ws = 0;
    rt->ws_bytes = 0;
    if (!(rt->ws = rt_alloc(rt, need, "cuDNN's workspace"))) return -1;
    rt->ws_bytes = need;
    rt->info.conv_workspace = need;
    for (int q = 0; q < SEQ_COUNT; q++)
      for (int j = 0; j < BATCH_SLOTS; j++) {
        SeqBatch *o = &rt->seq[q].slot[j];
        if (o->graph) rt->cu->graph_exec_destroy(o->graph);
        o->graph = NULL;
      }
  }
  return 0;
}

// ---------------------------------------------------------------- enqueue

static int gemm(CudaRt *rt, const CudaProgram *p, const CudaStep *st, const CuDevptr *a, int n) {
  const CudaGemmDesc *d = &p->gemms[st->desc];
  long long m = cuda_dim(d->m_n, d->m, n), nn = cuda_dim(d->n_n, d->n, n);
  long long k = cuda_dim(d->k_n, d->k, n), batch = cuda_dim(d->batch_n, d->batch, n);
  const char *node = st->node >= 0 ? p->nodes[st->node].name : "?";
  if (!fits_int(m) || !fits_int(nn) || !fits_int(k) || !fits_int(batch) || !fits_int(d->lda) ||
      !fits_int(d->ldb) || !fits_int(d->ldc)) {
    snprintf(rt->err, sizeof rt->err, "matrix product %s: a dimension exceeds cuBLAS's int range", node);
    return -1;
  }
  char what[300];
  snprintf(what, sizeof what, "the matrix product of %s (%lldx%lldx%lld, %lld batches)", node, m, nn,
           k, batch);
  BLAS(rt->blas->set_math_mode(rt->blas_h, d->tf32 && rt->opt.tf32 != 0 ? BLASAPI_TF32_TENSOR_OP_MATH
                                                                          : BLASAPI_DEFAULT_MATH),
       "cublasSetMathMode", what);
  float alpha = d->alpha, beta = d->beta;
  BLAS(rt->blas->sgemm_strided_batched(rt->blas_h, d->trans_a ? BLASAPI_OP_T : BLASAPI_OP_N,
                                       d->trans_b ? BLASAPI_OP_T : BLASAPI_OP_N, (int)m, (int)nn,
                                       (int)k, &alpha, (const float *)(uintptr_t)a[0], (int)d->lda,
                                       d->stride_a, (const float *)(uintptr_t)a[1], (int)d->ldb,
                                       d->stride_b, &beta, (float *)(uintptr_t)a[2], (int)d->ldc,
                                       d->stride_c, (int)batch),
       "cublasSgemmStridedBatched", what);
  return 0;
}

int lib_enqueue(CudaRt *rt, const CudaProgram *p, const CudaStep *st, const CuDevptr *a,
                const ConvPlan *cp, int n) {
  rt->info.library_calls++;
  if (st->kind == CUDA_STEP_GEMM) return gemm(rt, p, st, a, n);
  const CudaConvDesc *d = &p->convs[st->desc];
  const char *node = st->node >= 0 ? p->nodes[st->node].name : "?";
  char what[300];
  snprintf(what, sizeof what, "convolution %s (%s)", node, kind_tag(st->kind));
  if (!cp || !cp->ready) {
    snprintf(rt->err, sizeof rt->err, "internal error: %s has no plan", what);
    return -1;
  }
  float alpha = 1.0f, beta = d->beta;
  size_t xo = 4 * (size_t)d->x_offset;
  void *ws = (void *)(uintptr_t)rt->ws;
  char *pa = (char *)(uintptr_t)a[0], *pb = (char *)(uintptr_t)a[1], *pc = (char *)(uintptr_t)a[2];
  if (st->kind == CUDA_STEP_CONV_FWD)
    DNN(rt->dnn->conv_fwd(rt->dnn_h, &alpha, cp->x, pa + xo, cp->w, pb, cp->conv, cp->algo, ws,
                          rt->ws_bytes, &beta, cp->y, pc),
        "cudnnConvolutionForward", what);
  else if (st->kind == CUDA_STEP_CONV_BWD_DATA)
    DNN(rt->dnn->conv_bwd_data(rt->dnn_h, &alpha, cp->w, pb, cp->y, pa, cp->conv, cp->algo, ws,
                               rt->ws_bytes, &beta, cp->x, pc + xo),
        "cudnnConvolutionBackwardData", what);
  else
    DNN(rt->dnn->conv_bwd_filter(rt->dnn_h, &alpha, cp->x, pa + xo, cp->y, pb, cp->conv, cp->algo,
                                 ws, rt->ws_bytes, &beta, cp->w, pc),
        "cudnnConvolutionBackwardFilter", what);
  return 0;
}
