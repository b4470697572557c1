// runtime/cpu_conv_internal.h — the grouped / depthwise convolutions of
// cpu_conv_direct.c, reached through cpu_conv_* when groups > 1.
#ifndef NAO_CPU_CONV_INTERNAL_H
#define NAO_CPU_CONV_INTERNAL_H

#include "runtime/cpu_kernels.h"

size_t cpu_conv_direct_ws_floats(const CpuConvShape *s, CpuConvOp op, int threads);
void cpu_conv_direct_fwd(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                         const float *w, float *y, size_t y_ss, int accumulate);
void cpu_conv_direct_bwd_data(ThreadPool *tp, const CpuConvShape *s, const float *dy,
                              size_t dy_ss, const float *w, float *dx, size_t dx_ss,
                              int accumulate);
void cpu_conv_direct_bwd_filter(ThreadPool *tp, const CpuConvShape *s, const float *x,
                                size_t x_ss, const float *dy, size_t dy_ss, float *dw,
                                int accumulate, float *ws);

#endif
