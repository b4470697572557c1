#!/usr/bin/python3
"""bench/cpu_conv_vs_torch.py — the CPU backend's convolution kernels against
PyTorch's on one thread, interleaved in one process: each repetition times our
kernel then PyTorch's (CPU time of the thread), so both see the same machine
load; the best of N is kept. On a shared machine this is the fairest
comparison available (docs/cpu-backend.md records its figures).

Our kernels are called through ctypes from a shared build of the runtime:

    gcc -shared -fPIC -O2 -std=c11 -I. $(pkg-config --cflags openblas) \
        -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L runtime/threadpool.c runtime/cpu_*.c \
        runtime/rng.c compiler/util.c -o /tmp/libnaocpu.so -lopenblas -lpthread -lm
    /usr/bin/python3 bench/cpu_conv_vs_torch.py [REPS] [LIB]
"""
import ctypes
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
L = ctypes.CDLL(sys.argv[2] if len(sys.argv) > 2 else "/tmp/libnaocpu.so")
L.cpu_blas_single_thread()
class Shape(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in "n ci h w co oh ow kh kw sh sw pt pl groups algo".split()]
fp = ctypes.POINTER(ctypes.c_float)
def P(t): return ctypes.cast(t.data_ptr(), fp)
L.cpu_conv_ws_floats.restype = ctypes.c_size_t
L.cpu_conv_ws_floats.argtypes = [ctypes.POINTER(Shape), ctypes.c_int, ctypes.c_int]
for f in ("cpu_conv_fwd", "cpu_conv_bwd_data"):
    getattr(L, f).argtypes = [ctypes.c_void_p, ctypes.POINTER(Shape), fp, ctypes.c_size_t, fp, fp, ctypes.c_size_t, ctypes.c_int, fp]
L.cpu_conv_bwd_filter.argtypes = [ctypes.c_void_p, ctypes.POINTER(Shape), fp, ctypes.c_size_t, fp, ctypes.c_size_t, fp, ctypes.c_int, fp]
def tt(fn):
    t0 = time.thread_time(); fn(); return (time.thread_time() - t0) * 1e3
shapes = [("3x3 16 @32",16,32,32,16,3,3,1,1),("1x3 16 @32",16,32,32,16,1,3,1,1),("3x1 16 @32",16,32,32,16,3,1,1,1),("1x1 48->16 @32",48,32,32,16,1,1,1,1),
          ("1x1 16 @32",16,32,32,16,1,1,1,1),("3x3 s2 32 @32",32,32,32,32,3,3,2,2),("1x7 s(1,2) 32 @32",32,32,32,32,1,7,1,2),("7x1 s(2,1) 32 @32x16",32,32,16,32,7,1,2,1),
          ("3x3 32 @16",32,16,16,32,3,3,1,1),("1x3 32 @16",32,16,16,32,1,3,1,1),("1x1 32 @16",32,16,16,32,1,1,1,1),("3x3 64 @8",64,8,8,64,3,3,1,1),("1x1 64 @8",64,8,8,64,1,1,1,1),
          ("stem 3x3 3->48 @32",3,32,32,48,3,3,1,1),("dw 3x3 16 @32",16,32,32,16,3,3,1,1,16),("dw 5x5 32 @16",32,16,16,32,5,5,1,1,32)]
B = 64; reps = int(sys.argv[1]) if len(sys.argv) > 1 else 9
tot = [0.0]*6
print(f"{'shape':22s} {'ours fwd':>8s} {'torch':>6s} {'ours bd':>8s} {'torch':>6s} {'ours bf':>8s} {'torch':>6s}   (ms, single thread, CPU time, best of {reps}, interleaved)")
for sh in shapes:
    name, ci, h, w, co, kh, kw, sy, sx = sh[:9]; g = sh[9] if len(sh) > 9 else 1
    pt, pl = kh // 2, kw // 2
    x = torch.randn(B, ci, h, w); wt = torch.randn(co, ci // g, kh, kw) * 0.1
    y = F.conv2d(x, wt, None, (sy, sx), (pt, pl), 1, g); dy = torch.randn_like(y)
    oh, ow = y.shape[2], y.shape[3]
    s = Shape(B, ci, h, w, co, oh, ow, kh, kw, sy, sx, pt, pl, g, 0)
    wsn = max(L.cpu_conv_ws_floats(ctypes.byref(s), op, 1) for op in range(3))
    ws = torch.empty(wsn + 64); yo = torch.empty_like(y); dxo = torch.empty_like(x); dwo = torch.empty_like(wt)
    xn, yn = ci*h*w, co*oh*ow
    ours = [lambda: L.cpu_conv_fwd(None, ctypes.byref(s), P(x), xn, P(wt), P(yo), yn, 0, P(ws)),
            lambda: L.cpu_conv_bwd_data(None, ctypes.byref(s), P(dy), yn, P(wt), P(dxo), xn, 0, P(ws)),
            lambda: L.cpu_conv_bwd_filter(None, ctypes.byref(s), P(x), xn, P(dy), yn, P(dwo), 0, P(ws))]
    theirs = [lambda: F.conv2d(x, wt, None, (sy, sx), (pt, pl), 1, g),
              lambda: torch.ops.aten.convolution_backward(dy, x, wt, None, (sy, sx), (pt, pl), (1, 1), False, (0, 0), g, [True, False, False]),
              lambda: torch.ops.aten.convolution_backward(dy, x, wt, None, (sy, sx), (pt, pl), (1, 1), False, (0, 0), g, [False, True, False])]
    best = [1e9]*6
    for f in ours + theirs: f()
    for r in range(reps):
        for k in range(3):
            best[2*k] = min(best[2*k], tt(ours[k])); best[2*k+1] = min(best[2*k+1], tt(theirs[k]))
    # correctness spot check
    L.cpu_conv_fwd(None, ctypes.byref(s), P(x), xn, P(wt), P(yo), yn, 0, P(ws))
    err = ((yo - y).abs().max() / y.abs().max()).item()
    tot = [a + b for a, b in zip(tot, best)]
    print(f"{name:22s} " + " ".join(f"{v:8.2f}" if i % 2 == 0 else f"{v:6.2f}" for i, v in enumerate(best)) + (f"  (err {err:.1e})" if err > 1e-5 else ""))
print(f"{'sum':22s} " + " ".join(f"{v:8.2f}" if i % 2 == 0 else f"{v:6.2f}" for i, v in enumerate(tot)) + f"   ours/torch {sum(tot[0::2])/sum(tot[1::2]):.2f}")
