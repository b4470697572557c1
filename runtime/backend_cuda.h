// runtime/backend_cuda.h — the cuda runtime: a CudaNet (compiler/cuda_plan.h)
// run on one NVIDIA GPU through the driver API, NVRTC, cuDNN and cuBLAS, all
// opened at run time; and the cuda backend of backend.h built on it.
//
// A CudaRt owns, for one device: the context and one stream, the net's
// kernels (compiled with NVRTC for the device's compute capability, through
// the kernel cache), the library handles, and the device memory of the
// net's programs for batches up to a maximum, allocated once after a check
// against the device's free memory. Programs run as sequences:
//   train   the "train" program, then the update program's gradient norm
//   update  the rest of the update program (SGD), then the restore of
//           parameters the train graph does not touch (as PyTorch skips
//           parameters without a gradient)
//   eval    the "eval" program
// A sequence is launched step by step the first time it runs at a batch size
// (this also warms cuDNN and cuBLAS up), captured as a CUDA graph the second
// time, and replayed from then on; a new batch size gets its own graph (a few
// are kept). Library convolutions get their algorithm once per descriptor and
// batch size (cudnnFind for the two main batch sizes, the heuristics for
// others), kept in memory and in the cache folder.
//
// Everything CUDA comes through the tables of cuda_api.h, cudnn_api.h and
// cublas_api.h, so tests run all of this on the CPU with mocks (docs/
// cuda-runtime.md says what that proves).
#ifndef NAO_BACKEND_CUDA_H
#define NAO_BACKEND_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "compiler/cuda_plan.h"
#include "runtime/backend.h"
#include "runtime/cublas_api.h"
#include "runtime/cuda_api.h"
#include "runtime/cudnn_api.h"

typedef enum { CUDA_CONV_AUTO = 0, CUDA_CONV_FIND, CUDA_CONV_HEURISTIC } CudaConvSearch;

typedef struct {
  const CudaApi *cu;          // NULL: libcuda, opened here
  const CudnnApi *dnn;        // NULL: libcudnn, opened when the net has convolutions
  const CublasApi *blas;      // NULL: libcublas, opened when the net has GEMMs
  int device;                 // ordinal
  const char *kernel_cache;   // NULL: $NAOC_KERNEL_CACHE, else the default folder; "off"
  int compile_threads;        // <= 0: the CPUs
  CudaConvSearch conv_search; // AUTO: find for the main batch sizes, heuristics otherwise
  int tf32;                   // -1: as the net's descriptors say; 0: never (checks)
  int graphs;                 // 1: capture and replay CUDA graphs; 0: launch step by step
  size_t mem_free_limit;      // > 0: act as if the device had at most this much free
  int verbose;                // 1: what happens, on stderr
} CudaRtOptions;

// graphs 1, tf32 -1, AUTO, cache from the environment.
void cuda_rt_options_default(CudaRtOptions *o);

typedef struct CudaRt CudaRt;

// What the runtime measured and chose (for reports and tests).
typedef struct {
  char device_name[128];
  int cc_major, cc_minor, sms;
  int driver_version;
  size_t total_mem, free_mem_at_start;
  size_t bytes_allocated;     // device memory the runtime holds now (its cuMemAllocs)
  size_t bytes_peak;          // the most it held at once
  size_t conv_workspace;      // bytes
  double compile_seconds;     // NVRTC through the cache (its library's loading included)
  double load_seconds;        // cuModuleLoadData and cuModuleGetFunction of every kernel
  int units_compiled, units_cached, units_damaged, compile_whole;
  char nvrtc[1100];           // library and version
  char cudnn[1100], cublas[1100];
  long long captures, graph_launches, eager_runs, kernel_launches, library_calls;
  int conv_searches;          // algorithm choices made by measurement (cudnnFind)
  int conv_heuristics;        // ... by cuDNN's heuristics
  int conv_cached;            // ... found in the algorithm cache
} CudaRtInfo;

// Memory a configuration needs (the check before allocating).
typedef struct {
  size_t fixed_bytes;         // parameters, optimizer state, fixed regions, workspaces
  size_t per_image_bytes;     // arena and scratch per image of the training batch
  size_t eval_bytes;          // what the evaluation batch adds beyond the training arena
  size_t need_bytes;          // total for the requested batches
  size_t free_bytes;          // what the device has free (after the context and libraries)
  long long largest_batch;    // the largest training batch that fits (0: none)
} CudaMemCheck;

// Opens the device, checks memory, compiles and loads the kernels, allocates.
// source: the NVRTC input (a whole net.cu, or net->device_source when NULL).
// Returns NULL with a message: a missing library or device names what is
// missing; a net too large says how much it needs and the largest batch.
CudaRt *cuda_rt_create(const CudaNet *net, const char *source, int max_batch, int max_eval_batch,
                       const CudaRtOptions *o, char *err, size_t errlen);
void cuda_rt_destroy(CudaRt *rt);  // NULL is fine
const CudaRtInfo *cuda_rt_info(const CudaRt *rt);
const CudaMemCheck *cuda_rt_memcheck(const CudaRt *rt);
const char *cuda_rt_error(const CudaRt *rt);

// Host state <-> device. momentum may be NULL (zeros); has_buf (per ParamTable
// entry, may be NULL) zeroes the momentum of entries without a buffer.
int cuda_rt_upload(CudaRt *rt, const float *params, const float *buffers, const float *momentum,
                   const unsigned char *has_buf);
int cuda_rt_download(CudaRt *rt, float *params, float *buffers, float *momentum);
int cuda_rt_download_grads(CudaRt *rt, float *grads);

// Which parameters the train graph writes (ParamTable entries): the update
// restores the others. Must be called before the first update; NULL: all.
void cuda_rt_set_active(CudaRt *rt, const unsigned char *active);

// The device memory the training input comes from in benchmarks: when set,
// cuda_rt_train_forward with images == NULL copies it (device to device).
int cuda_rt_set_resident_input(CudaRt *rt, const float *images, const int32_t *labels, int n);

typedef struct {
  float loss;                 // the train graph's loss
  float grad_norm;            // before clipping
  float *logits;              // (n, classes) dense, valid until the next call
  int classes;
} CudaStepOut;

// Forward and backward of the train program and the gradient norm for n
// images (host arrays, or NULL for the resident input), the masks of step
// rs, clipping by h's grad_clip (h may be NULL: no clipping); waits for them
// and reads loss, norm and logits.
int cuda_rt_train_forward(CudaRt *rt, const float *images, const int32_t *labels, int n,
                          const RunState *rs, const SgdHyper *h, CudaStepOut *out);
// Undoes the last forward's updates of the BN statistics (a step whose loss
// or gradient norm is not finite changes nothing).
int cuda_rt_train_undo(CudaRt *rt);
// The SGD update of the last forward (enqueued; the next call that reads
// waits for it).
int cuda_rt_train_update(CudaRt *rt, const SgdHyper *h);
// The eval program for n images: loss (its graph's mean) and logits.
int cuda_rt_eval(CudaRt *rt, const float *images, const int32_t *labels, int n, CudaStepOut *out);
// Waits for everything enqueued.
int cuda_rt_sync(CudaRt *rt);

// Reads tensor t of program `prog` ("train", "eval") at the batch size of its
// last run as a dense (n, c*h*w) array (unbatched: c*h*w floats). -1 when the
// tensor is not materialized (fused away).
int cuda_rt_read_tensor(CudaRt *rt, const char *prog, int t, float *out);

// Times the train sequence (forward + update) `steps` times with device events
// after it ran at this batch size (graphs captured): milliseconds per step.
int cuda_rt_time_steps(CudaRt *rt, int n, int steps, const RunState *rs, const SgdHyper *h,
                       double *ms_per_step);

// The device's ceilings, measured (tests/gpu/check.sh's floor): a device to
// device copy of copy_bytes (bandwidth counts bytes read plus written), and
// an n x n x n SGEMM through cuBLAS in float32 and with TF32 allowed, on
// random data; the best of `reps` timings each. A rate that could not be
// measured is 0.
typedef struct {
  double copy_gbs;      // GB/s
  double fp32_tflops;   // TFLOP/s
  double tf32_tflops;
} CudaDeviceRates;
int cuda_rt_measure(CudaRt *rt, size_t copy_bytes, int gemm_n, int reps, CudaDeviceRates *out);
// Device memory in use by everything on the device (cuMemGetInfo), and its size.
int cuda_rt_mem_used(CudaRt *rt, size_t *used, size_t *total);
// ---------------------------------------------------------------- data parallelism
// Hooks the runtime calls in the train sequence (runtime/dist_cuda.h makes
// them): launch(b) on the main stream right after step after_step[b] of the
// train program (bucket b's gradients are final there), join once after the
// train program (before the gradient norm), and wait after the sequence was
// enqueued and before the host reads its outputs (polls instead of a blocking
// synchronize). All three may run while a CUDA graph is being captured.
typedef struct {
  void *user;
  int n_buckets;
  const int *after_step;  // (n_buckets) non-decreasing steps of the train program
  int (*launch)(void *user, int bucket, CuStream main);
  int (*join)(void *user, CuStream main);
  int (*wait)(void *user);
  const char *(*error)(const void *user);
} CudaRtComm;

// Installs the hooks (NULL: removes them) and rebuilds the train sequence
// (its captured graphs are dropped). Returns 0, or -1 with the error set.
int cuda_rt_set_comm(CudaRt *rt, const CudaRtComm *comm);
// What the hooks need of the runtime: its driver table, main stream, device
// gradient array (the ParamTable's flat layout) and train program.
void cuda_rt_comm_env(CudaRt *rt, const CudaApi **cu, CuStream *stream, CuDevptr *grads,
                      const CudaProgram **train);

// ---------------------------------------------------------------- the backend
// backend_cuda_create (backend.h) takes BackendOptions' cuda_net and
// cuda_source (a generated trainer's), or builds the CudaNet from the
// NetBuild's graphs in process, with runtime options from the environment
// (NAOC_CUDA_TF32=0, NAOC_CUDA_GRAPHS=0, NAOC_CUDA_VERBOSE=1) and the kernel
// cache folder of BackendOptions. This one takes runtime options explicitly
// (rto NULL: as backend_cuda_create).
Backend *backend_cuda_create_with(const NetBuild *nb, ModelState *host, const BackendOptions *opt,
                                  const CudaNet *net, const char *source,
                                  const CudaRtOptions *rto, char *err, size_t errlen);
// The runtime under a cuda backend (for tools), NULL for another backend.
CudaRt *backend_cuda_rt(Backend *b);

#endif
