// runtime/backend_cuda_int.h — the cuda runtime's internals, shared by
// backend_cuda_rt.c (setup, memory), backend_cuda_exec.c (sequences, graphs,
// steps) and backend_cuda_lib.c (cuDNN and cuBLAS steps). Not for other
// parts: backend_cuda.h is the interface.
#ifndef NAO_BACKEND_CUDA_INT_H
#define NAO_BACKEND_CUDA_INT_H

#include "runtime/backend_cuda.h"
#include "runtime/cuda_compile.h"
#include "runtime/kcache.h"

enum { SEQ_TRAIN = 0, SEQ_UPDATE, SEQ_EVAL, SEQ_COUNT, BATCH_SLOTS = 4 };
// SeqOp.prog values that are not programs: a device copy, the data-parallel
// hooks (backend_cuda.h's CudaRtComm: launch of bucket `step`, join).
enum { SEQ_OP_COPY = -1, SEQ_OP_COMM = -2, SEQ_OP_JOIN = -3 };

// One step of a sequence: a program's step, or a device copy (restores).
typedef struct {
  int prog;        // index into CudaRt.progs; -1 for a copy
  int step;        // the program's step
  CuDevptr dst, src;
  size_t bytes;    // copies
} SeqOp;

// A library convolution at one batch size.
typedef struct {
  DnnTensorDesc x, y;
  DnnFilterDesc w;
  DnnConvDesc conv;
  int algo;
  size_t ws;
  int ready;
} ConvPlan;

// A sequence resolved for one batch size.
typedef struct {
  int n;                // 0: free slot
  NaoArgs *args;        // per op (kernels)
  CuDevptr (*lib)[3];   // per op: the three addresses of a library step
  ConvPlan *conv;       // per op (convolution steps)
  CuGraphExec graph;    // NULL until captured
  int runs;             // how often it ran
  long long last_use;
} SeqBatch;

typedef struct {
  int n_ops;
  SeqOp *ops;
  SeqBatch slot[BATCH_SLOTS];
} Seq;

typedef struct {
  const CudaProgram *p;
  CuDevptr fixed;       // its fixed region
  int last_n;           // batch of its last run
} RtProg;

// One cached algorithm choice: key text -> algo, workspace.
typedef struct {
  char *key;
  int algo;
  size_t ws;
  int measured;         // 1: cudnnFind chose it
} AlgoEntry;

struct CudaRt {
  CudaRtOptions opt;
  const CudaNet *net;
  char err[4096];
  CudaRtInfo info;
  CudaMemCheck mem;
  // libraries
  CudaApi cu_own;
  CudnnApi dnn_own;
  CublasApi blas_own;
  CudaLib cu_lib, dnn_lib, blas_lib;
  const CudaApi *cu;
  const CudnnApi *dnn;    // NULL when the net has no convolutions
  const CublasApi *blas;  // NULL when the net has no GEMMs
  int need_dnn, need_blas;
  DnnHandle dnn_h;
  BlasHandle blas_h;
  // device
  CuDevice dev;
  CuContext ctx;
  int ctx_retained;
  CuStream stream;
  CuEvent ev0, ev1;
  KCache cache;
  // kernels
  int n_modules;
  CuModule *modules;
  CuFunction *fns;        // per net kernel
  // memory
  int max_batch, max_eval_batch;
  CuDevptr params, grads, momentum, buffers, arena, scratch, masks, hyper, backup;
  CuDevptr buffers_prev;   // BN statistics before the current step
  CuDevptr ws;            // cuDNN workspace
  size_t ws_bytes;
  CuDevptr blas_ws;
  size_t blas_ws_bytes;
  CuDevptr resident_x, resident_y;  // benchmark input
  int resident_n;
  CuDevptr *allocs;       // everything allocated, freed at destroy
  size_t *alloc_sizes;
  int n_allocs, cap_allocs;
  // host staging (pinned when possible)
  void *host_out;         // logits, loss, norm
  size_t host_out_bytes;
  int host_out_pinned;
  NaoMask *host_masks;
  // programs and sequences
  int n_progs;
  RtProg progs[4];
  int train_prog, eval_prog, update_prog;  // -1 when absent
  int n_update_pre;       // update steps that run with the train sequence (gradient norm)
  Seq seq[SEQ_COUNT];
  unsigned char *active;  // per ParamTable entry (NULL: all)
  int restore_ready;
  long long clock;
  // data parallelism
  CudaRtComm comm;
  int has_comm;
  // algorithm cache
  int n_algos, cap_algos;
  AlgoEntry *algos;
  int algos_dirty;
  char algo_file[64];
};

// backend_cuda_rt.c
int rt_fail(CudaRt *rt, CuResult r, const char *call, const char *what);
CuDevptr rt_alloc(CudaRt *rt, size_t bytes, const char *what);  // 0 with rt->err set
void rt_free(CudaRt *rt, CuDevptr p);
int rt_put(CudaRt *rt, CuDevptr dst, const void *src, size_t bytes, const char *what);
int rt_get(CudaRt *rt, void *dst, CuDevptr src, size_t bytes, const char *what);
CuDevptr rt_tensor(const CudaRt *rt, const RtProg *pp, int t, int n);

// backend_cuda_lib.c
int lib_open(CudaRt *rt);                       // handles, streams, cuBLAS workspace
void lib_close(CudaRt *rt);
int lib_plan_convs(CudaRt *rt, Seq *s, SeqBatch *b, int main_batch);  // algorithms, workspace
void lib_free_batch(CudaRt *rt, Seq *s, SeqBatch *b);
int lib_enqueue(CudaRt *rt, const CudaProgram *p, const CudaStep *st, const CuDevptr *a,
                const ConvPlan *cp, int n);
void lib_algo_load(CudaRt *rt);
void lib_algo_save(CudaRt *rt);
size_t lib_ws_reserve(const CudaRt *rt, size_t free_bytes);

// backend_cuda_exec.c
int seq_build(CudaRt *rt);
void seq_free(CudaRt *rt);
int seq_prepare(CudaRt *rt, int seq, int n);
int seq_run(CudaRt *rt, int seq, int n);

#endif
