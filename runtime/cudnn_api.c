// runtime/cudnn_api.c — the cuDNN table filled from libcudnn.so.9 (cudnn_api.h).
//
// cuDNN 9's libcudnn.so.9 is a shim that loads its sub-libraries (graph, ops,
// cnn, engines) on first use; cuda_find.c loads them first from the shim's
// folder when that folder is not on the loader's path (the Python wheel).
#include "runtime/cudnn_api.h"

#include <stdio.h>
#include <string.h>

int cudnn_api_fail(const CudnnApi *api, DnnStatus s, const char *call, const char *what,
                   char *err, size_t errlen) {
  if (s == DNNAPI_STATUS_SUCCESS) return 0;
  const char *str = api && api->get_error_string ? api->get_error_string(s) : NULL;
  char last[400] = "";
  if (api && api->get_last_error_string) {
    api->get_last_error_string(last, sizeof last);
    last[sizeof last - 1] = '\0';
  }
  snprintf(err, errlen, "%s failed while %s: %s (%d)%s%s", call, what, str ? str : "cuDNN error",
           s, last[0] ? ": " : "", last);
  return -1;
}

#define LOAD(field, name)                                                                    \
  do {                                                                                       \
    *(void **)&api->field = cuda_lib_sym(lib, name);                                         \
    if (!api->field) {                                                                       \
      snprintf(err, errlen, "cuDNN %s has no %s: cuDNN 9 is needed", lib->path, name);       \
      cuda_lib_close(lib);                                                                   \
      return -1;                                                                             \
    }                                                                                        \
  } while (0)

int cudnn_api_load(CudnnApi *api, CudaLib *lib, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  if (cuda_lib_open(&cuda_spec_cudnn, lib, err, errlen)) return -1;
  api->name = lib->path;
  LOAD(get_version, "cudnnGetVersion");
  LOAD(get_error_string, "cudnnGetErrorString");
  *(void **)&api->get_last_error_string = cuda_lib_sym(lib, "cudnnGetLastErrorString");
  LOAD(create, "cudnnCreate");
  LOAD(destroy, "cudnnDestroy");
  LOAD(set_stream, "cudnnSetStream");
  LOAD(create_tensor_desc, "cudnnCreateTensorDescriptor");
  LOAD(set_tensor_4d_ex, "cudnnSetTensor4dDescriptorEx");
  LOAD(destroy_tensor_desc, "cudnnDestroyTensorDescriptor");
  LOAD(create_filter_desc, "cudnnCreateFilterDescriptor");
  LOAD(set_filter_4d, "cudnnSetFilter4dDescriptor");
  LOAD(destroy_filter_desc, "cudnnDestroyFilterDescriptor");
  LOAD(create_conv_desc, "cudnnCreateConvolutionDescriptor");
  LOAD(set_conv_2d, "cudnnSetConvolution2dDescriptor");
  LOAD(set_conv_group_count, "cudnnSetConvolutionGroupCount");
  LOAD(set_conv_math_type, "cudnnSetConvolutionMathType");
  LOAD(destroy_conv_desc, "cudnnDestroyConvolutionDescriptor");
  LOAD(get_conv_2d_fwd_output_dim, "cudnnGetConvolution2dForwardOutputDim");
  LOAD(get_fwd_algo_v7, "cudnnGetConvolutionForwardAlgorithm_v7");
  LOAD(find_fwd_algo_ex, "cudnnFindConvolutionForwardAlgorithmEx");
  LOAD(get_fwd_ws, "cudnnGetConvolutionForwardWorkspaceSize");
  LOAD(conv_fwd, "cudnnConvolutionForward");
  LOAD(get_bwd_data_algo_v7, "cudnnGetConvolutionBackwardDataAlgorithm_v7");
  LOAD(find_bwd_data_algo_ex, "cudnnFindConvolutionBackwardDataAlgorithmEx");
  LOAD(get_bwd_data_ws, "cudnnGetConvolutionBackwardDataWorkspaceSize");
  LOAD(conv_bwd_data, "cudnnConvolutionBackwardData");
  LOAD(get_bwd_filter_algo_v7, "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
  LOAD(find_bwd_filter_algo_ex, "cudnnFindConvolutionBackwardFilterAlgorithmEx");
  LOAD(get_bwd_filter_ws, "cudnnGetConvolutionBackwardFilterWorkspaceSize");
  LOAD(conv_bwd_filter, "cudnnConvolutionBackwardFilter");
  return 0;
}
