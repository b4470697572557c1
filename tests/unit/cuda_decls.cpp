// tests/unit/cuda_decls.cpp — our declarations of the CUDA driver API, cuDNN
// and cuBLAS (runtime/cuda_api.h, cudnn_api.h, cublas_api.h) against the
// toolkit's own headers, at compile time. tests/e2e/cuda_decls.sh compiles it
// (g++ -fsyntax-only) where the headers are installed.
//
// What "the same" means here is what the C calling convention sees: every
// function-pointer field of our tables has the signature of the symbol its
// loader binds, parameter by parameter, up to: an enum and an integer of the
// same size are alike (ours are ints), and two pointers to opaque structures
// are alike (handles). Constants have the headers' values; the algorithm
// performance struct has the headers' layout.
#include <cstddef>
#include <type_traits>

#include <cublas_api.h>
#include <cuda.h>
#include <cudnn.h>

extern "C" {
#include "runtime/cublas_api.h"
#include "runtime/cuda_api.h"
#include "runtime/cudnn_api.h"
}

template <int N> struct Int {};   // an integer or enum of N bytes
struct Opaque {};                 // a pointer to a structure (a handle)
template <class T> struct Ptr {};
template <class R, class... A> struct Fn {};

template <class T, class = void> struct Canon { using type = T; };
template <class T> using canon_t = typename Canon<typename std::remove_cv<T>::type>::type;
template <class T>
struct Canon<T, typename std::enable_if<std::is_integral<T>::value || std::is_enum<T>::value>::type> {
  using type = Int<sizeof(T)>;
};
template <class T> struct PtrCanon {
  using type = typename std::conditional<std::is_class<T>::value, Opaque, Ptr<canon_t<T>>>::type;
};
template <class T> struct Canon<T *, void> { using type = typename PtrCanon<typename std::remove_cv<T>::type>::type; };
template <class R, class... A> struct Canon<R(A...), void> { using type = Fn<canon_t<R>, canon_t<A>...>; };

template <class Field, class Real> constexpr bool same_abi() {
  return std::is_same<canon_t<Field>, canon_t<Real *>>::value;
}

#define SAME(table, field, symbol) \
  static_assert(same_abi<decltype(table::field), decltype(symbol)>(), #table "." #field " vs " #symbol)

// ---------------------------------------------------------------- driver
SAME(CudaApi, init, cuInit);
SAME(CudaApi, driver_get_version, cuDriverGetVersion);
SAME(CudaApi, device_get_count, cuDeviceGetCount);
SAME(CudaApi, device_get, cuDeviceGet);
SAME(CudaApi, device_get_name, cuDeviceGetName);
SAME(CudaApi, device_get_attribute, cuDeviceGetAttribute);
SAME(CudaApi, device_total_mem, cuDeviceTotalMem_v2);
SAME(CudaApi, primary_ctx_retain, cuDevicePrimaryCtxRetain);
SAME(CudaApi, primary_ctx_release, cuDevicePrimaryCtxRelease_v2);
SAME(CudaApi, ctx_set_current, cuCtxSetCurrent);
SAME(CudaApi, ctx_synchronize, cuCtxSynchronize);
SAME(CudaApi, mem_get_info, cuMemGetInfo_v2);
SAME(CudaApi, mem_alloc, cuMemAlloc_v2);
SAME(CudaApi, mem_free, cuMemFree_v2);
SAME(CudaApi, mem_host_alloc, cuMemHostAlloc);
SAME(CudaApi, mem_free_host, cuMemFreeHost);
SAME(CudaApi, memcpy_htod_async, cuMemcpyHtoDAsync_v2);
SAME(CudaApi, memcpy_dtoh_async, cuMemcpyDtoHAsync_v2);
SAME(CudaApi, memcpy_dtod_async, cuMemcpyDtoDAsync_v2);
SAME(CudaApi, memset_d8_async, cuMemsetD8Async);
SAME(CudaApi, module_load_data, cuModuleLoadData);
SAME(CudaApi, module_unload, cuModuleUnload);
SAME(CudaApi, module_get_function, cuModuleGetFunction);
SAME(CudaApi, func_get_attribute, cuFuncGetAttribute);
SAME(CudaApi, launch_kernel, cuLaunchKernel);
SAME(CudaApi, stream_create, cuStreamCreate);
SAME(CudaApi, stream_destroy, cuStreamDestroy_v2);
SAME(CudaApi, stream_synchronize, cuStreamSynchronize);
SAME(CudaApi, stream_query, cuStreamQuery);
SAME(CudaApi, stream_wait_event, cuStreamWaitEvent);
SAME(CudaApi, stream_begin_capture, cuStreamBeginCapture_v2);
SAME(CudaApi, stream_end_capture, cuStreamEndCapture);
SAME(CudaApi, graph_instantiate, cuGraphInstantiateWithFlags);
SAME(CudaApi, graph_launch, cuGraphLaunch);
SAME(CudaApi, graph_exec_destroy, cuGraphExecDestroy);
SAME(CudaApi, graph_destroy, cuGraphDestroy);
SAME(CudaApi, event_create, cuEventCreate);
SAME(CudaApi, event_record, cuEventRecord);
SAME(CudaApi, event_synchronize, cuEventSynchronize);
SAME(CudaApi, event_elapsed_time, cuEventElapsedTime);
SAME(CudaApi, event_destroy, cuEventDestroy_v2);
SAME(CudaApi, get_error_name, cuGetErrorName);
SAME(CudaApi, get_error_string, cuGetErrorString);

static_assert(sizeof(CuDevptr) == sizeof(CUdeviceptr) && sizeof(CuResult) == sizeof(CUresult) &&
                  sizeof(CuDevice) == sizeof(CUdevice),
              "driver scalar types");
static_assert(CUAPI_SUCCESS == CUDA_SUCCESS && CUAPI_ERROR_INVALID_VALUE == CUDA_ERROR_INVALID_VALUE &&
                  CUAPI_ERROR_OUT_OF_MEMORY == CUDA_ERROR_OUT_OF_MEMORY &&
                  CUAPI_ERROR_NOT_INITIALIZED == CUDA_ERROR_NOT_INITIALIZED &&
                  CUAPI_ERROR_STUB_LIBRARY == CUDA_ERROR_STUB_LIBRARY &&
                  CUAPI_ERROR_NO_DEVICE == CUDA_ERROR_NO_DEVICE &&
                  CUAPI_ERROR_INVALID_IMAGE == CUDA_ERROR_INVALID_IMAGE &&
                  CUAPI_ERROR_INVALID_CONTEXT == CUDA_ERROR_INVALID_CONTEXT &&
                  CUAPI_ERROR_NO_BINARY_FOR_GPU == CUDA_ERROR_NO_BINARY_FOR_GPU &&
                  CUAPI_ERROR_INVALID_HANDLE == CUDA_ERROR_INVALID_HANDLE &&
                  CUAPI_ERROR_NOT_FOUND == CUDA_ERROR_NOT_FOUND &&
                  CUAPI_ERROR_NOT_READY == CUDA_ERROR_NOT_READY &&
                  CUAPI_ERROR_ILLEGAL_ADDRESS == CUDA_ERROR_ILLEGAL_ADDRESS &&
                  CUAPI_ERROR_LAUNCH_FAILED == CUDA_ERROR_LAUNCH_FAILED &&
                  CUAPI_ERROR_NOT_PERMITTED == CUDA_ERROR_NOT_PERMITTED &&
                  CUAPI_ERROR_NOT_SUPPORTED == CUDA_ERROR_NOT_SUPPORTED &&
                  CUAPI_ERROR_STREAM_CAPTURE_UNSUPPORTED == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED &&
                  CUAPI_ERROR_STREAM_CAPTURE_INVALIDATED == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED &&
                  CUAPI_ERROR_STREAM_CAPTURE_UNMATCHED == CUDA_ERROR_STREAM_CAPTURE_UNMATCHED &&
                  CUAPI_ERROR_UNKNOWN == CUDA_ERROR_UNKNOWN,
              "CUresult values");
static_assert(CUAPI_DEV_MAX_THREADS_PER_BLOCK == CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK &&
                  CUAPI_DEV_MAX_SHARED_MEMORY_PER_BLOCK == CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK &&
                  CUAPI_DEV_CLOCK_RATE == CU_DEVICE_ATTRIBUTE_CLOCK_RATE &&
                  CUAPI_DEV_MULTIPROCESSOR_COUNT == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT &&
                  CUAPI_DEV_MEMORY_CLOCK_RATE == CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE &&
                  CUAPI_DEV_GLOBAL_MEMORY_BUS_WIDTH == CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH &&
                  CUAPI_DEV_L2_CACHE_SIZE == CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE &&
                  CUAPI_DEV_COMPUTE_CAPABILITY_MAJOR == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR &&
                  CUAPI_DEV_COMPUTE_CAPABILITY_MINOR == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
              "CUdevice_attribute values");
static_assert(CUAPI_FUNC_MAX_THREADS_PER_BLOCK == CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK &&
                  CUAPI_FUNC_SHARED_SIZE_BYTES == CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES &&
                  CUAPI_FUNC_LOCAL_SIZE_BYTES == CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES &&
                  CUAPI_FUNC_NUM_REGS == CU_FUNC_ATTRIBUTE_NUM_REGS,
              "CUfunction_attribute values");
static_assert(CUAPI_STREAM_DEFAULT == CU_STREAM_DEFAULT && CUAPI_STREAM_NON_BLOCKING == CU_STREAM_NON_BLOCKING &&
                  CUAPI_CAPTURE_MODE_GLOBAL == CU_STREAM_CAPTURE_MODE_GLOBAL &&
                  CUAPI_CAPTURE_MODE_THREAD_LOCAL == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
                  CUAPI_CAPTURE_MODE_RELAXED == CU_STREAM_CAPTURE_MODE_RELAXED &&
                  CUAPI_EVENT_DEFAULT == CU_EVENT_DEFAULT && CUAPI_EVENT_DISABLE_TIMING == CU_EVENT_DISABLE_TIMING &&
                  CUAPI_MEMHOSTALLOC_PORTABLE == CU_MEMHOSTALLOC_PORTABLE,
              "stream, capture, event and host-allocation flags");

// ---------------------------------------------------------------- cuDNN
SAME(CudnnApi, get_version, cudnnGetVersion);
SAME(CudnnApi, get_error_string, cudnnGetErrorString);
SAME(CudnnApi, get_last_error_string, cudnnGetLastErrorString);
SAME(CudnnApi, create, cudnnCreate);
SAME(CudnnApi, destroy, cudnnDestroy);
SAME(CudnnApi, set_stream, cudnnSetStream);
SAME(CudnnApi, create_tensor_desc, cudnnCreateTensorDescriptor);
SAME(CudnnApi, set_tensor_4d_ex, cudnnSetTensor4dDescriptorEx);
SAME(CudnnApi, destroy_tensor_desc, cudnnDestroyTensorDescriptor);
SAME(CudnnApi, create_filter_desc, cudnnCreateFilterDescriptor);
SAME(CudnnApi, set_filter_4d, cudnnSetFilter4dDescriptor);
SAME(CudnnApi, destroy_filter_desc, cudnnDestroyFilterDescriptor);
SAME(CudnnApi, create_conv_desc, cudnnCreateConvolutionDescriptor);
SAME(CudnnApi, set_conv_2d, cudnnSetConvolution2dDescriptor);
SAME(CudnnApi, set_conv_group_count, cudnnSetConvolutionGroupCount);
SAME(CudnnApi, set_conv_math_type, cudnnSetConvolutionMathType);
SAME(CudnnApi, destroy_conv_desc, cudnnDestroyConvolutionDescriptor);
SAME(CudnnApi, get_conv_2d_fwd_output_dim, cudnnGetConvolution2dForwardOutputDim);
SAME(CudnnApi, get_fwd_ws, cudnnGetConvolutionForwardWorkspaceSize);
SAME(CudnnApi, conv_fwd, cudnnConvolutionForward);
SAME(CudnnApi, get_bwd_data_ws, cudnnGetConvolutionBackwardDataWorkspaceSize);
SAME(CudnnApi, conv_bwd_data, cudnnConvolutionBackwardData);
SAME(CudnnApi, get_bwd_filter_ws, cudnnGetConvolutionBackwardFilterWorkspaceSize);
SAME(CudnnApi, conv_bwd_filter, cudnnConvolutionBackwardFilter);
// The algorithm searches fill three struct types of one layout (ours is
// DnnAlgoPerf): the layouts are checked here, the pointers are alike handles.
#define LAYOUT(Perf)                                                                           \
  static_assert(sizeof(Perf) == sizeof(DnnAlgoPerf) &&                                         \
                    offsetof(Perf, algo) == offsetof(DnnAlgoPerf, algo) &&                     \
                    offsetof(Perf, status) == offsetof(DnnAlgoPerf, status) &&                 \
                    offsetof(Perf, time) == offsetof(DnnAlgoPerf, time) &&                     \
                    offsetof(Perf, memory) == offsetof(DnnAlgoPerf, memory) &&                 \
                    offsetof(Perf, determinism) == offsetof(DnnAlgoPerf, determinism) &&       \
                    offsetof(Perf, mathType) == offsetof(DnnAlgoPerf, math_type) &&            \
                    sizeof(((Perf *)0)->algo) == sizeof(int),                                  \
                #Perf " layout")
LAYOUT(cudnnConvolutionFwdAlgoPerf_t);
LAYOUT(cudnnConvolutionBwdDataAlgoPerf_t);
LAYOUT(cudnnConvolutionBwdFilterAlgoPerf_t);
// the search functions: identical once their perf pointer is seen as opaque
SAME(CudnnApi, get_fwd_algo_v7, cudnnGetConvolutionForwardAlgorithm_v7);
SAME(CudnnApi, find_fwd_algo_ex, cudnnFindConvolutionForwardAlgorithmEx);
SAME(CudnnApi, get_bwd_data_algo_v7, cudnnGetConvolutionBackwardDataAlgorithm_v7);
SAME(CudnnApi, find_bwd_data_algo_ex, cudnnFindConvolutionBackwardDataAlgorithmEx);
SAME(CudnnApi, get_bwd_filter_algo_v7, cudnnGetConvolutionBackwardFilterAlgorithm_v7);
SAME(CudnnApi, find_bwd_filter_algo_ex, cudnnFindConvolutionBackwardFilterAlgorithmEx);

static_assert(DNNAPI_STATUS_SUCCESS == CUDNN_STATUS_SUCCESS &&
                  DNNAPI_STATUS_NOT_INITIALIZED == CUDNN_STATUS_NOT_INITIALIZED &&
                  DNNAPI_STATUS_BAD_PARAM == CUDNN_STATUS_BAD_PARAM &&
                  DNNAPI_STATUS_NOT_SUPPORTED == CUDNN_STATUS_NOT_SUPPORTED &&
                  DNNAPI_STATUS_EXECUTION_FAILED == CUDNN_STATUS_EXECUTION_FAILED &&
                  DNNAPI_DATA_FLOAT == CUDNN_DATA_FLOAT && DNNAPI_TENSOR_NCHW == CUDNN_TENSOR_NCHW &&
                  DNNAPI_CROSS_CORRELATION == CUDNN_CROSS_CORRELATION &&
                  DNNAPI_DEFAULT_MATH == CUDNN_DEFAULT_MATH && DNNAPI_TENSOR_OP_MATH == CUDNN_TENSOR_OP_MATH &&
                  DNNAPI_FMA_MATH == CUDNN_FMA_MATH && DNNAPI_NON_DETERMINISTIC == CUDNN_NON_DETERMINISTIC &&
                  DNNAPI_DETERMINISTIC == CUDNN_DETERMINISTIC,
              "cuDNN values");

// ---------------------------------------------------------------- cuBLAS
SAME(CublasApi, create, cublasCreate_v2);
SAME(CublasApi, destroy, cublasDestroy_v2);
SAME(CublasApi, get_version, cublasGetVersion_v2);
SAME(CublasApi, get_status_string, cublasGetStatusString);
SAME(CublasApi, set_stream, cublasSetStream_v2);
SAME(CublasApi, set_workspace, cublasSetWorkspace_v2);
SAME(CublasApi, set_math_mode, cublasSetMathMode);
SAME(CublasApi, set_pointer_mode, cublasSetPointerMode_v2);
SAME(CublasApi, sgemm_strided_batched, cublasSgemmStridedBatched);
static_assert(BLASAPI_STATUS_SUCCESS == CUBLAS_STATUS_SUCCESS &&
                  BLASAPI_STATUS_NOT_INITIALIZED == CUBLAS_STATUS_NOT_INITIALIZED &&
                  BLASAPI_STATUS_INVALID_VALUE == CUBLAS_STATUS_INVALID_VALUE &&
                  BLASAPI_STATUS_EXECUTION_FAILED == CUBLAS_STATUS_EXECUTION_FAILED &&
                  BLASAPI_STATUS_NOT_SUPPORTED == CUBLAS_STATUS_NOT_SUPPORTED &&
                  BLASAPI_OP_N == CUBLAS_OP_N && BLASAPI_OP_T == CUBLAS_OP_T &&
                  BLASAPI_DEFAULT_MATH == CUBLAS_DEFAULT_MATH && BLASAPI_PEDANTIC_MATH == CUBLAS_PEDANTIC_MATH &&
                  BLASAPI_TF32_TENSOR_OP_MATH == CUBLAS_TF32_TENSOR_OP_MATH &&
                  BLASAPI_POINTER_MODE_HOST == CUBLAS_POINTER_MODE_HOST,
              "cuBLAS values");

int main() { return 0; }
