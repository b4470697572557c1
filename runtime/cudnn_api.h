// runtime/cudnn_api.h — the part of cuDNN 9 the cuda backend uses (the
// convolution API: tensor, filter and convolution descriptors, algorithm
// heuristics and search, workspace sizes, forward / backward data / backward
// filter), declared here and reached through a table filled from libcudnn.so.9
// (cudnn_api_load) or by a test's mock (tests/unit/cudnn_mock.c).
//
// Types and constants mirror cudnn.h (cuDNN 9): tests/unit/test_cuda_decls.c
// checks them against the installed headers. Names: Dnn* types, DNNAPI_
// constants. The three cudnnConvolution*AlgoPerf_t structures share one
// layout, DnnAlgoPerf.
#ifndef NAO_CUDNN_API_H
#define NAO_CUDNN_API_H

#include <stddef.h>

#include "runtime/cuda_api.h"
#include "runtime/cuda_find.h"

typedef int DnnStatus;                          // cudnnStatus_t
typedef struct DnnContextSt *DnnHandle;         // cudnnHandle_t
typedef struct DnnTensorSt *DnnTensorDesc;      // cudnnTensorDescriptor_t
typedef struct DnnFilterSt *DnnFilterDesc;      // cudnnFilterDescriptor_t
typedef struct DnnConvSt *DnnConvDesc;          // cudnnConvolutionDescriptor_t

enum {
  DNNAPI_STATUS_SUCCESS = 0,
  DNNAPI_STATUS_NOT_INITIALIZED = 1001,
  DNNAPI_STATUS_BAD_PARAM = 2000,
  DNNAPI_STATUS_NOT_SUPPORTED = 3000,
  DNNAPI_STATUS_EXECUTION_FAILED = 5000,
  DNNAPI_DATA_FLOAT = 0,
  DNNAPI_TENSOR_NCHW = 0,
  DNNAPI_CROSS_CORRELATION = 1,
  DNNAPI_DEFAULT_MATH = 0,      // TF32 tensor cores allowed for float32 (cuDNN >= 8)
  DNNAPI_TENSOR_OP_MATH = 1,
  DNNAPI_FMA_MATH = 3,          // plain float32 FMA: no TF32
  DNNAPI_NON_DETERMINISTIC = 0,
  DNNAPI_DETERMINISTIC = 1,
};

typedef struct {
  int algo;           // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  DnnStatus status;
  float time;         // ms (Find); -1 from the heuristics
  size_t memory;      // workspace bytes
  int determinism;    // cudnnDeterminism_t
  int math_type;      // cudnnMathType_t
  int reserved[3];
} DnnAlgoPerf;

typedef struct CudnnApi {
  const char *name;   // library path, or "mock"
  size_t (*get_version)(void);
  const char *(*get_error_string)(DnnStatus s);
  void (*get_last_error_string)(char *msg, size_t max);  // optional: NULL when absent
  DnnStatus (*create)(DnnHandle *h);
  DnnStatus (*destroy)(DnnHandle h);
  DnnStatus (*set_stream)(DnnHandle h, CuStream s);
  DnnStatus (*create_tensor_desc)(DnnTensorDesc *d);
  DnnStatus (*set_tensor_4d_ex)(DnnTensorDesc d, int dtype, int n, int c, int h, int w, int ns,
                                int cs, int hs, int ws);
  DnnStatus (*destroy_tensor_desc)(DnnTensorDesc d);
  DnnStatus (*create_filter_desc)(DnnFilterDesc *d);
  DnnStatus (*set_filter_4d)(DnnFilterDesc d, int dtype, int format, int k, int c, int h, int w);
  DnnStatus (*destroy_filter_desc)(DnnFilterDesc d);
  DnnStatus (*create_conv_desc)(DnnConvDesc *d);
  DnnStatus (*set_conv_2d)(DnnConvDesc d, int pad_h, int pad_w, int u, int v, int dil_h,
                           int dil_w, int mode, int compute_type);
  DnnStatus (*set_conv_group_count)(DnnConvDesc d, int groups);
  DnnStatus (*set_conv_math_type)(DnnConvDesc d, int math);
  DnnStatus (*destroy_conv_desc)(DnnConvDesc d);
  DnnStatus (*get_conv_2d_fwd_output_dim)(DnnConvDesc c, DnnTensorDesc x, DnnFilterDesc w,
                                          int *n, int *ch, int *h, int *wd);
  // forward
  DnnStatus (*get_fwd_algo_v7)(DnnHandle h, DnnTensorDesc x, DnnFilterDesc w, DnnConvDesc c,
                               DnnTensorDesc y, int requested, int *returned, DnnAlgoPerf *perf);
  DnnStatus (*find_fwd_algo_ex)(DnnHandle h, DnnTensorDesc x, const void *xp, DnnFilterDesc w,
                                const void *wp, DnnConvDesc c, DnnTensorDesc y, void *yp,
                                int requested, int *returned, DnnAlgoPerf *perf, void *ws,
                                size_t ws_bytes);
  DnnStatus (*get_fwd_ws)(DnnHandle h, DnnTensorDesc x, DnnFilterDesc w, DnnConvDesc c,
                          DnnTensorDesc y, int algo, size_t *bytes);
  DnnStatus (*conv_fwd)(DnnHandle h, const void *alpha, DnnTensorDesc x, const void *xp,
                        DnnFilterDesc w, const void *wp, DnnConvDesc c, int algo, void *ws,
                        size_t ws_bytes, const void *beta, DnnTensorDesc y, void *yp);
  // backward data
  DnnStatus (*get_bwd_data_algo_v7)(DnnHandle h, DnnFilterDesc w, DnnTensorDesc dy, DnnConvDesc c,
                                    DnnTensorDesc dx, int requested, int *returned,
                                    DnnAlgoPerf *perf);
  DnnStatus (*find_bwd_data_algo_ex)(DnnHandle h, DnnFilterDesc w, const void *wp,
                                     DnnTensorDesc dy, const void *dyp, DnnConvDesc c,
                                     DnnTensorDesc dx, void *dxp, int requested, int *returned,
                                     DnnAlgoPerf *perf, void *ws, size_t ws_bytes);
  DnnStatus (*get_bwd_data_ws)(DnnHandle h, DnnFilterDesc w, DnnTensorDesc dy, DnnConvDesc c,
                               DnnTensorDesc dx, int algo, size_t *bytes);
  DnnStatus (*conv_bwd_data)(DnnHandle h, const void *alpha, DnnFilterDesc w, const void *wp,
                             DnnTensorDesc dy, const void *dyp, DnnConvDesc c, int algo, void *ws,
                             size_t ws_bytes, const void *beta, DnnTensorDesc dx, void *dxp);
  // backward filter
  DnnStatus (*get_bwd_filter_algo_v7)(DnnHandle h, DnnTensorDesc x, DnnTensorDesc dy,
                                      DnnConvDesc c, DnnFilterDesc dw, int requested,
                                      int *returned, DnnAlgoPerf *perf);
  DnnStatus (*find_bwd_filter_algo_ex)(DnnHandle h, DnnTensorDesc x, const void *xp,
                                       DnnTensorDesc dy, const void *dyp, DnnConvDesc c,
                                       DnnFilterDesc dw, void *dwp, int requested, int *returned,
                                       DnnAlgoPerf *perf, void *ws, size_t ws_bytes);
  DnnStatus (*get_bwd_filter_ws)(DnnHandle h, DnnTensorDesc x, DnnTensorDesc dy, DnnConvDesc c,
                                 DnnFilterDesc dw, int algo, size_t *bytes);
  DnnStatus (*conv_bwd_filter)(DnnHandle h, const void *alpha, DnnTensorDesc x, const void *xp,
                               DnnTensorDesc dy, const void *dyp, DnnConvDesc c, int algo,
                               void *ws, size_t ws_bytes, const void *beta, DnnFilterDesc dw,
                               void *dwp);
} CudnnApi;

// Opens cuDNN 9 (cuda_find.h: NAOC_CUDNN_LIB, the loader's path, the toolkit,
// the nvidia-cudnn wheel) and fills api. Returns 0, or -1 with a message.
int cudnn_api_load(CudnnApi *api, CudaLib *lib, char *err, size_t errlen);

// 0 when s is success; else "CALL failed while WHAT: cuDNN's string (s)[:
// its last error message]" in err and -1.
int cudnn_api_fail(const CudnnApi *api, DnnStatus s, const char *call, const char *what,
                   char *err, size_t errlen);

#endif
