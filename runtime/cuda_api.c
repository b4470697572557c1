// runtime/cuda_api.c — the driver API table filled from libcuda (cuda_api.h).
//
// Each entry is looked up under the symbol a program compiled against cuda.h
// would bind (the _v2 names where cuda.h defines them); a few have an older
// fallback so that drivers of CUDA 12 work too. A missing symbol means the
// driver is older than this code needs: the message says which symbol.
#include "runtime/cuda_api.h"

#include <stdio.h>
#include <string.h>

const char *cuda_api_result_name(CuResult r) {
  switch (r) {
    case CUAPI_SUCCESS: return "CUDA_SUCCESS";
    case CUAPI_ERROR_INVALID_VALUE: return "CUDA_ERROR_INVALID_VALUE";
    case CUAPI_ERROR_OUT_OF_MEMORY: return "CUDA_ERROR_OUT_OF_MEMORY";
    case CUAPI_ERROR_NOT_INITIALIZED: return "CUDA_ERROR_NOT_INITIALIZED";
    case CUAPI_ERROR_STUB_LIBRARY: return "CUDA_ERROR_STUB_LIBRARY";
    case CUAPI_ERROR_NO_DEVICE: return "CUDA_ERROR_NO_DEVICE";
    case CUAPI_ERROR_INVALID_IMAGE: return "CUDA_ERROR_INVALID_IMAGE";
    case CUAPI_ERROR_INVALID_CONTEXT: return "CUDA_ERROR_INVALID_CONTEXT";
    case CUAPI_ERROR_NO_BINARY_FOR_GPU: return "CUDA_ERROR_NO_BINARY_FOR_GPU";
    case CUAPI_ERROR_INVALID_HANDLE: return "CUDA_ERROR_INVALID_HANDLE";
    case CUAPI_ERROR_NOT_FOUND: return "CUDA_ERROR_NOT_FOUND";
    case CUAPI_ERROR_NOT_READY: return "CUDA_ERROR_NOT_READY";
    case CUAPI_ERROR_ILLEGAL_ADDRESS: return "CUDA_ERROR_ILLEGAL_ADDRESS";
    case CUAPI_ERROR_LAUNCH_FAILED: return "CUDA_ERROR_LAUNCH_FAILED";
    case CUAPI_ERROR_NOT_PERMITTED: return "CUDA_ERROR_NOT_PERMITTED";
    case CUAPI_ERROR_NOT_SUPPORTED: return "CUDA_ERROR_NOT_SUPPORTED";
    case CUAPI_ERROR_STREAM_CAPTURE_UNSUPPORTED: return "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED";
    case CUAPI_ERROR_STREAM_CAPTURE_INVALIDATED: return "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED";
    case CUAPI_ERROR_STREAM_CAPTURE_UNMATCHED: return "CUDA_ERROR_STREAM_CAPTURE_UNMATCHED";
    case CUAPI_ERROR_UNKNOWN: return "CUDA_ERROR_UNKNOWN";
    default: return "CUDA_ERROR";
  }
}

int cuda_api_fail(const CudaApi *api, CuResult r, const char *call, const char *what, char *err,
                  size_t errlen) {
  if (r == CUAPI_SUCCESS) return 0;
  const char *name = NULL, *desc = NULL;
  if (api && api->get_error_name && api->get_error_name(r, &name) != CUAPI_SUCCESS) name = NULL;
  if (api && api->get_error_string && api->get_error_string(r, &desc) != CUAPI_SUCCESS) desc = NULL;
  if (!name) name = cuda_api_result_name(r);
  snprintf(err, errlen, "%s failed while %s: %s (%d)%s%s", call, what, name, r, desc ? ": " : "",
           desc ? desc : "");
  return -1;
}

// Looks up the first of the names that exists.
static void *sym2(const CudaLib *lib, const char *a, const char *b) {
  void *p = cuda_lib_sym(lib, a);
  if (!p && b) p = cuda_lib_sym(lib, b);
  return p;
}

#define LOAD(field, a, b)                                                                 \
  do {                                                                                    \
    *(void **)&api->field = sym2(lib, a, b);                                              \
    if (!api->field) {                                                                    \
      snprintf(err, errlen,                                                               \
               "the CUDA driver %s has no %s: it is too old for this program (CUDA 12 or " \
               "newer is needed)",                                                        \
               lib->path, a);                                                             \
      cuda_lib_close(lib);                                                                \
      return -1;                                                                          \
    }                                                                                     \
  } while (0)

int cuda_api_load(CudaApi *api, CudaLib *lib, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  if (cuda_lib_open(&cuda_spec_driver, lib, err, errlen)) return -1;
  api->name = lib->path;
  LOAD(init, "cuInit", NULL);
  LOAD(driver_get_version, "cuDriverGetVersion", NULL);
  LOAD(device_get_count, "cuDeviceGetCount", NULL);
  LOAD(device_get, "cuDeviceGet", NULL);
  LOAD(device_get_name, "cuDeviceGetName", NULL);
  LOAD(device_get_attribute, "cuDeviceGetAttribute", NULL);
  LOAD(device_total_mem, "cuDeviceTotalMem_v2", NULL);
  LOAD(primary_ctx_retain, "cuDevicePrimaryCtxRetain", NULL);
  LOAD(primary_ctx_release, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease");
  LOAD(ctx_set_current, "cuCtxSetCurrent", NULL);
  LOAD(ctx_synchronize, "cuCtxSynchronize", NULL);
  LOAD(mem_get_info, "cuMemGetInfo_v2", NULL);
  LOAD(mem_alloc, "cuMemAlloc_v2", NULL);
  LOAD(mem_free, "cuMemFree_v2", NULL);
  LOAD(mem_host_alloc, "cuMemHostAlloc", NULL);
  LOAD(mem_free_host, "cuMemFreeHost", NULL);
  LOAD(memcpy_htod_async, "cuMemcpyHtoDAsync_v2", NULL);
  LOAD(memcpy_dtoh_async, "cuMemcpyDtoHAsync_v2", NULL);
  LOAD(memcpy_dtod_async, "cuMemcpyDtoDAsync_v2", NULL);
  LOAD(memset_d8_async, "cuMemsetD8Async", NULL);
  LOAD(module_load_data, "cuModuleLoadData", NULL);
  LOAD(module_unload, "cuModuleUnload", NULL);
  LOAD(module_get_function, "cuModuleGetFunction", NULL);
  LOAD(func_get_attribute, "cuFuncGetAttribute", NULL);
  LOAD(launch_kernel, "cuLaunchKernel", NULL);
  LOAD(stream_create, "cuStreamCreate", NULL);
  LOAD(stream_destroy, "cuStreamDestroy_v2", NULL);
  LOAD(stream_synchronize, "cuStreamSynchronize", NULL);
  LOAD(stream_query, "cuStreamQuery", NULL);
  LOAD(stream_wait_event, "cuStreamWaitEvent", NULL);
  LOAD(stream_begin_capture, "cuStreamBeginCapture_v2", NULL);
  LOAD(stream_end_capture, "cuStreamEndCapture", NULL);
  LOAD(graph_instantiate, "cuGraphInstantiateWithFlags", NULL);
  LOAD(graph_launch, "cuGraphLaunch", NULL);
  LOAD(graph_exec_destroy, "cuGraphExecDestroy", NULL);
  LOAD(graph_destroy, "cuGraphDestroy", NULL);
  LOAD(event_create, "cuEventCreate", NULL);
  LOAD(event_record, "cuEventRecord", NULL);
  LOAD(event_synchronize, "cuEventSynchronize", NULL);
  LOAD(event_elapsed_time, "cuEventElapsedTime_v2", "cuEventElapsedTime");
  LOAD(event_destroy, "cuEventDestroy_v2", NULL);
  LOAD(get_error_name, "cuGetErrorName", NULL);
  LOAD(get_error_string, "cuGetErrorString", NULL);
  return 0;
}
