// tests/unit/cuda_mock.h — a CUDA device on the CPU for the cuda runtime's
// tests: the driver API table of runtime/cuda_api.h, and cuDNN and cuBLAS
// tables (cudnn_mock.c, cublas_mock.c) computed with the CPU kernels.
//
// What it does:
//  - device memory is host memory (aligned_alloc), filled with NaN bytes when
//    allocated (real device memory holds garbage: a read of something never
//    written shows up); every copy's range and every kernel pointer argument
//    must lie inside a live allocation;
//  - cuModuleLoadData accepts only an ELF image (a cubin), and
//    cuModuleGetFunction only names that appear in it; the kernels then run
//    in the CUDA emulator (tests/cuda_emu) built from the same device code;
//  - streams execute at once, except while capturing: then every operation
//    (kernel, copy, memset, library call) is recorded into the graph, and
//    cuGraphLaunch replays the recording. Capture rules are those of
//    CU_STREAM_CAPTURE_MODE_GLOBAL: a synchronous call, an allocation or a
//    copy from pageable host memory during a capture fails with
//    CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and invalidates the capture; an
//    event recorded on a capturing stream is a fork point: another stream
//    that waits for it (cuStreamWaitEvent) records into the same graph from
//    then on, in submission order (a valid order of the forked work);
//    cuStreamQuery says done, outside captures;
//  - a failing kernel (emulator error) makes the context's error sticky, as
//    a real launch failure does.
// The mock's state is file-scope (one mock per test process).
#ifndef NAO_TEST_CUDA_MOCK_H
#define NAO_TEST_CUDA_MOCK_H

#include <stddef.h>

#include "compiler/cuda_plan.h"
#include "runtime/cublas_api.h"
#include "runtime/cuda_api.h"
#include "runtime/cudnn_api.h"

typedef struct {
  size_t mem_total;        // bytes the device has (default 16 GiB)
  size_t mem_free;         // bytes free before the runtime allocates (default 12 GiB)
  CuResult init_result;    // what cuInit returns (default success)
  int device_count;        // default 1
  int cc_major, cc_minor;  // default 9.0
  const CudaNet *net;      // kernels' argument counts, for pointer checks
  const char *source;      // the device code the emulator builds
  int whole_file;          // 1: source is a whole net.cu
} CudaMockConfig;

typedef struct {
  long long launches;        // kernels executed (eager and replayed)
  long long graph_launches;
  long long captures;        // successful cuStreamEndCapture
  long long capture_violations;
  long long lib_calls;       // cuDNN / cuBLAS operations executed
  long long finds;           // cuDNN algorithm searches
  long long syncs;
  long long allocs, frees;
  size_t bytes_live;
  long long modules;
  long long conv_tf32, conv_fma;      // convolutions by math mode (TF32 allowed / plain FMA)
  long long gemm_tf32, gemm_plain;    // GEMMs by math mode
} CudaMockStats;

// Builds the emulator from cfg->source (g++, a few seconds) and resets the
// state. Returns 0, or -1 with a message.
int cuda_mock_install(const CudaMockConfig *cfg, char *err, size_t errlen);
void cuda_mock_uninstall(void);
const CudaApi *cuda_mock_api(void);
const CudnnApi *cudnn_mock_api(void);
const CublasApi *cublas_mock_api(void);
const CudaMockStats *cuda_mock_stats(void);
// The first rule the runtime broke (a pointer outside memory, a capture
// violation, a bad descriptor...), or NULL.
const char *cuda_mock_violation(void);
void cuda_mock_clear_violation(void);
// Sets what cuMemGetInfo reports from now on (free before allocations).
void cuda_mock_set_free(size_t free_bytes);
// The net whose kernels' argument counts the pointer checks use (same device code).
void cuda_mock_set_net(const CudaNet *net);

// ---------------------------------------------------------------- for the library mocks
CudaMockStats *cuda_mock_stats_rw(void);
typedef void (*MockHostFn)(const void *payload);
// Runs fn(payload) on the stream (recorded while capturing). The payload is
// copied. Returns a CuResult.
CuResult cuda_mock_enqueue(CuStream s, MockHostFn fn, const void *payload, size_t size);
int cuda_mock_capturing(CuStream s);
// 1 when [p, p + bytes) lies inside one live device allocation; else records
// a violation naming `what` and returns 0.
int cuda_mock_in_memory(const void *p, size_t bytes, const char *what);
void cuda_mock_violate(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
