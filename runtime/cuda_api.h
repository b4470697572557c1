// runtime/cuda_api.h — the part of the CUDA driver API the cuda backend uses,
// declared here (no CUDA header is needed to build) and reached through a
// table of function pointers, filled either from libcuda.so.1 opened at run
// time (cuda_api_load) or by a test's mock (tests/unit/cuda_mock.c).
//
// The types and constants mirror cuda.h exactly (same sizes, same values);
// tests/unit/test_cuda_decls.c checks every one against the toolkit's headers
// when they are installed. Names: CuX for CUx types, CUAPI_ for constants.
// Where cuda.h maps a name to a versioned symbol (cuMemAlloc -> cuMemAlloc_v2)
// the loader asks for the versioned one, as a program compiled against cuda.h
// would.
//
// Errors: every call returns a CuResult; cuda_api_fail() turns a failure into
// "CALL failed while WHAT: CUDA_ERROR_NAME (code): the driver's description".
#ifndef NAO_CUDA_API_H
#define NAO_CUDA_API_H

#include <stddef.h>

#include "runtime/cuda_find.h"

typedef int CuResult;                  // CUresult
typedef int CuDevice;                  // CUdevice
typedef unsigned long long CuDevptr;   // CUdeviceptr (64-bit)
typedef struct CuCtxSt *CuContext;     // CUcontext
typedef struct CuModSt *CuModule;      // CUmodule
typedef struct CuFuncSt *CuFunction;   // CUfunction
typedef struct CuStreamSt *CuStream;   // CUstream
typedef struct CuEventSt *CuEvent;     // CUevent
typedef struct CuGraphSt *CuGraph;     // CUgraph
typedef struct CuGraphExecSt *CuGraphExec;  // CUgraphExec

enum {
  CUAPI_SUCCESS = 0,
  CUAPI_ERROR_INVALID_VALUE = 1,
  CUAPI_ERROR_OUT_OF_MEMORY = 2,
  CUAPI_ERROR_NOT_INITIALIZED = 3,
  CUAPI_ERROR_STUB_LIBRARY = 34,
  CUAPI_ERROR_NO_DEVICE = 100,
  CUAPI_ERROR_INVALID_IMAGE = 200,
  CUAPI_ERROR_INVALID_CONTEXT = 201,
  CUAPI_ERROR_NO_BINARY_FOR_GPU = 209,
  CUAPI_ERROR_INVALID_HANDLE = 400,
  CUAPI_ERROR_NOT_FOUND = 500,
  CUAPI_ERROR_NOT_READY = 600,
  CUAPI_ERROR_ILLEGAL_ADDRESS = 700,
  CUAPI_ERROR_LAUNCH_FAILED = 719,
  CUAPI_ERROR_NOT_PERMITTED = 800,
  CUAPI_ERROR_NOT_SUPPORTED = 801,
  CUAPI_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900,
  CUAPI_ERROR_STREAM_CAPTURE_INVALIDATED = 901,
  CUAPI_ERROR_STREAM_CAPTURE_UNMATCHED = 903,
  CUAPI_ERROR_UNKNOWN = 999,
};

// CUdevice_attribute values used
enum {
  CUAPI_DEV_MAX_THREADS_PER_BLOCK = 1,
  CUAPI_DEV_MAX_SHARED_MEMORY_PER_BLOCK = 8,
  CUAPI_DEV_CLOCK_RATE = 13,            // kHz
  CUAPI_DEV_MULTIPROCESSOR_COUNT = 16,
  CUAPI_DEV_MEMORY_CLOCK_RATE = 36,     // kHz
  CUAPI_DEV_GLOBAL_MEMORY_BUS_WIDTH = 37,
  CUAPI_DEV_L2_CACHE_SIZE = 38,
  CUAPI_DEV_COMPUTE_CAPABILITY_MAJOR = 75,
  CUAPI_DEV_COMPUTE_CAPABILITY_MINOR = 76,
};

// CUfunction_attribute values used
enum {
  CUAPI_FUNC_MAX_THREADS_PER_BLOCK = 0,
  CUAPI_FUNC_SHARED_SIZE_BYTES = 1,
  CUAPI_FUNC_LOCAL_SIZE_BYTES = 3,
  CUAPI_FUNC_NUM_REGS = 4,
};

enum {
  CUAPI_STREAM_DEFAULT = 0,
  CUAPI_STREAM_NON_BLOCKING = 1,
  CUAPI_CAPTURE_MODE_GLOBAL = 0,
  CUAPI_CAPTURE_MODE_THREAD_LOCAL = 1,
  CUAPI_CAPTURE_MODE_RELAXED = 2,
  CUAPI_EVENT_DEFAULT = 0,
  CUAPI_EVENT_DISABLE_TIMING = 2,
  CUAPI_MEMHOSTALLOC_PORTABLE = 1,
};

typedef struct CudaApi {
  const char *name;  // where the functions come from: a library path, or "mock"
  CuResult (*init)(unsigned flags);
  CuResult (*driver_get_version)(int *version);
  CuResult (*device_get_count)(int *count);
  CuResult (*device_get)(CuDevice *dev, int ordinal);
  CuResult (*device_get_name)(char *name, int len, CuDevice dev);
  CuResult (*device_get_attribute)(int *value, int attrib, CuDevice dev);
  CuResult (*device_total_mem)(size_t *bytes, CuDevice dev);
  CuResult (*primary_ctx_retain)(CuContext *ctx, CuDevice dev);
  CuResult (*primary_ctx_release)(CuDevice dev);
  CuResult (*ctx_set_current)(CuContext ctx);
  CuResult (*ctx_synchronize)(void);
  CuResult (*mem_get_info)(size_t *free_bytes, size_t *total_bytes);
  CuResult (*mem_alloc)(CuDevptr *ptr, size_t bytes);
  CuResult (*mem_free)(CuDevptr ptr);
  CuResult (*mem_host_alloc)(void **ptr, size_t bytes, unsigned flags);
  CuResult (*mem_free_host)(void *ptr);
  CuResult (*memcpy_htod_async)(CuDevptr dst, const void *src, size_t bytes, CuStream s);
  CuResult (*memcpy_dtoh_async)(void *dst, CuDevptr src, size_t bytes, CuStream s);
  CuResult (*memcpy_dtod_async)(CuDevptr dst, CuDevptr src, size_t bytes, CuStream s);
  CuResult (*memset_d8_async)(CuDevptr dst, unsigned char value, size_t bytes, CuStream s);
  CuResult (*module_load_data)(CuModule *mod, const void *image);
  CuResult (*module_unload)(CuModule mod);
  CuResult (*module_get_function)(CuFunction *fn, CuModule mod, const char *name);
  CuResult (*func_get_attribute)(int *value, int attrib, CuFunction fn);
  CuResult (*launch_kernel)(CuFunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                            unsigned by, unsigned bz, unsigned smem, CuStream s, void **params,
                            void **extra);
  CuResult (*stream_create)(CuStream *s, unsigned flags);
  CuResult (*stream_destroy)(CuStream s);
  CuResult (*stream_synchronize)(CuStream s);
  CuResult (*stream_query)(CuStream s);  // SUCCESS: all done; NOT_READY: still running
  CuResult (*stream_wait_event)(CuStream s, CuEvent ev, unsigned flags);
  CuResult (*stream_begin_capture)(CuStream s, int mode);
  CuResult (*stream_end_capture)(CuStream s, CuGraph *graph);
  CuResult (*graph_instantiate)(CuGraphExec *exec, CuGraph graph, unsigned long long flags);
  CuResult (*graph_launch)(CuGraphExec exec, CuStream s);
  CuResult (*graph_exec_destroy)(CuGraphExec exec);
  CuResult (*graph_destroy)(CuGraph graph);
  CuResult (*event_create)(CuEvent *ev, unsigned flags);
  CuResult (*event_record)(CuEvent ev, CuStream s);
  CuResult (*event_synchronize)(CuEvent ev);
  CuResult (*event_elapsed_time)(float *ms, CuEvent start, CuEvent end);
  CuResult (*event_destroy)(CuEvent ev);
  CuResult (*get_error_name)(CuResult r, const char **str);
  CuResult (*get_error_string)(CuResult r, const char **str);
} CudaApi;

// Opens the driver library (cuda_find.h: NAOC_CUDA_LIB, the loader's path,
// /usr/local/nvidia/lib64) and fills api with its functions. Does not call
// cuInit. Returns 0, or -1 with a message naming what is missing.
int cuda_api_load(CudaApi *api, CudaLib *lib, char *err, size_t errlen);

// 0 when r is CUAPI_SUCCESS; else writes "CALL failed while WHAT: NAME (r):
// DESCRIPTION" into err and returns -1. The description comes from the
// driver when it can give one.
int cuda_api_fail(const CudaApi *api, CuResult r, const char *call, const char *what, char *err,
                  size_t errlen);

// "CUDA_ERROR_OUT_OF_MEMORY" for the codes above (the driver knows more).
const char *cuda_api_result_name(CuResult r);

#endif
