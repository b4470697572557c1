// runtime/cpu_conv_internal.h — the convolutions behind cpu_conv_*: grouped /
// depthwise direct loops (cpu_conv_direct.c, groups > 1) and the direct AVX2
// kernels of dense convolutions (cpu_conv_avx2.c).
#ifndef NAO_CPU_CONV_INTERNAL_H
#define NAO_CPU_CONV_INTERNAL_H

#include "runtime/cpu_kernels.h"

size_t cpu_conv_direct_ws_floats(const CpuConvShape *s, CpuConvOp op, int threads);
void cpu_conv_direct_fwd(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                         const float *w, float *y, size_t y_ss, int accumulate, float *ws);
void cpu_conv_direct_bwd_data(ThreadPool *tp, const CpuConvShape *s, const float *dy,
                              size_t dy_ss, const float *w, float *dx, size_t dx_ss,
                              int accumulate, float *ws);
void cpu_conv_direct_bwd_filter(ThreadPool *tp, const CpuConvShape *s, const float *x,
                                size_t x_ss, const float *dy, size_t dy_ss, float *dw,
                                int accumulate, float *ws);


// cpu_conv_avx2.c, cpu_conv_avx2_filter.c: the direct AVX2 + FMA kernels of
// dense convolutions.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DC_HAVE_X86 1
#else
#define DC_HAVE_X86 0
#endif
enum {
  DC_CO = 4,  // output channels per tile
  DC_PX = 8,  // output pixels per vector
};
// The zero-padded image of one sample that the direct kernels read: channel
// c, padded row r, column phase ph, index q holds x[c][r - pt][q*sw + ph - pl].
typedef struct {
  int hp;        // padded rows: (oh-1)*sh + kh
  int wq;        // floats per row and phase (with slack for the last vector)
  int vpr;       // vectors of DC_PX output pixels per output row
  size_t plane;  // floats per channel: hp * sw * wq
} DcPad;
DcPad dc_pad(const CpuConvShape *s);
// (compiled for AVX2: call only when cpu_conv_direct_avx2_available)
void dc_fill_pad(const CpuConvShape *s, const DcPad *p, const float *x, float *pad);
size_t dc_toff_floats(const CpuConvShape *s);
// toff[(ci*kh + ky)*kw + kx]: offset of that channel and tap in the padded image.
void dc_tap_offsets(const CpuConvShape *s, const DcPad *p, int *toff);
size_t dc_wpk_floats(const CpuConvShape *s);
// wpk[co/4][ci][kh][kw][4] from w [co][ci][kh][kw]; flip: from the forward filter
// [ci][co][kh][kw] of a stride-1 backward data pass, transposed and flipped.
void dc_pack(const CpuConvShape *s, const float *w, int flip, float *wpk);
// One forward pass over a padded image (cpu_conv_avx2.c).
typedef struct {
  const CpuConvShape *s;
  DcPad p;
  const float *x;
  size_t x_ss;
  const float *wpk;
  float *y;
  size_t y_ss;
  int accumulate;
  float *pads;  // per thread
  size_t pad_stride;
  int steps;        // ci * kh * kw
  const int *toff;  // per (ci, ky, kx): offset into the padded image
} DcCtx;
// Output channels [4b, 4b+4) x the 3 pixel vectors v of the padded image pad
// into the planes y [co][oh][ow] (AVX2; call only when available).
void dc_tile(const DcCtx *c, const float *pad, int b, const int *v, float *y);
// Strided backward data pass by phases (cpu_conv_avx2_bwd.c).
int cpu_conv_direct_avx2_bwd_fits(const CpuConvShape *s);
size_t cpu_conv_direct_avx2_bwd_ws_floats(const CpuConvShape *s, int threads);
void cpu_conv_direct_avx2_bwd(ThreadPool *tp, const CpuConvShape *s, const float *dy,
                              size_t dy_ss, const float *w, float *dx, size_t dx_ss,
                              int accumulate, float *ws);
size_t cpu_conv_direct_avx2_filter_ws_floats(const CpuConvShape *s, int threads, int chunks);
// Partial filter gradients of `chunks` fixed chunks of the batch into part
// (chunks x co x ci*kh*kw floats).
void cpu_conv_direct_avx2_filter(ThreadPool *tp, const CpuConvShape *s, const float *x,
                                 size_t x_ss, const float *dy, size_t dy_ss, int chunks,
                                 float *part, float *ws);
// 1x1 convolutions, any stride and padding (cpu_conv_pw_avx2.c). op FWD or
// BWD_DATA: in is x or dy, out y or dx; filter: chunk partials as above.
int cpu_conv_pw_avx2_fits(const CpuConvShape *s);  // CPU and shape
size_t cpu_conv_pw_avx2_ws_floats(const CpuConvShape *s, CpuConvOp op, int threads);
void cpu_conv_pw_avx2(ThreadPool *tp, const CpuConvShape *s, CpuConvOp op, const float *in,
                      size_t in_ss, const float *w, float *out, size_t out_ss, int accumulate,
                      float *ws);
void cpu_conv_pw_avx2_filter(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                             const float *dy, size_t dy_ss, int chunks, float *part, float *ws);
// 3x3 stride-1 convolutions by Winograd's F(2x2, 3x3) (cpu_conv_wino_avx2.c):
// the forward pass (flip: the backward data pass of the transposed shape, as
// cpu_conv_direct_avx2).
int cpu_conv_wino_avx2_fits(const CpuConvShape *s);  // CPU and shape
size_t cpu_conv_wino_avx2_ws_floats(const CpuConvShape *s, int threads);
void cpu_conv_wino_avx2_fwd(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                            const float *w, int flip, float *y, size_t y_ss, int accumulate,
                            float *ws);
// The products behind them, for other kernels (AVX2; call only when available):
// wpk[r/4][k][r%4] = w[r][k] (transpose: w[k][r]), 0 for r >= rows;
void cpu_pw_pack(const float *w, int rows, int k, int transpose, float *wpk);
// y[r][p] (+)= sum_i wpk[r][i] x[i][p], p < np (x rows x_cs apart, y rows y_cs);
void cpu_pw_gemm_avx2(int rows, int k, int np, const float *wpk, const float *x, size_t x_cs,
                      float *y, size_t y_cs, int accumulate);
int cpu_conv_direct_avx2_available(void);
int cpu_conv_direct_avx2_fits(const CpuConvShape *s);  // CPU and shape
size_t cpu_conv_direct_avx2_ws_floats(const CpuConvShape *s, int threads);
void cpu_conv_direct_avx2(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                          const float *w, int flip, float *y, size_t y_ss, int accumulate,
                          float *ws);


// cpu_conv_dw_avx2.c: depthwise convolutions with AVX2 + FMA.
int cpu_conv_dw_avx2_fits(const CpuConvShape *s, CpuConvOp op);
size_t cpu_conv_dw_avx2_ws_floats(const CpuConvShape *s, CpuConvOp op, int threads);
void cpu_conv_dw_avx2_fwd(ThreadPool *tp, const CpuConvShape *fwd, int flip, const float *x,
                          size_t x_ss, const float *w, float *y, size_t y_ss, int accumulate,
                          float *ws);
void cpu_conv_dw_avx2_filter(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                             const float *dy, size_t dy_ss, float *dw, int accumulate, float *ws);

#endif
