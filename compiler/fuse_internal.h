// compiler/fuse_internal.h — shared between fuse_ops.c and fuse.c only.
#ifndef NAO_FUSE_INTERNAL_H
#define NAO_FUSE_INTERNAL_H

#include <stddef.h>

#include "compiler/fuse.h"

typedef enum { RD_EXPR = 0, RD_MEM = 1, RD_NC = 2, RD_IGNORED = 3 } FuseReadHow;

typedef struct {
  int tensor;
  FuseReadHow how;
} FuseRawRead;

// Working state of one fuse_build call.
typedef struct {
  FusePlan *fp;
  const IrGraph *g;
  const FuseOptions *opt;
  // Raw reads of each op before inlining (per op: a growable list).
  FuseRawRead **raw;
  int *n_raw, *cap_raw;
  int *inlined;     // per op: 1 when a DEF whose tensor is recomputed by its readers
  int *gwrite;      // per op: parameter whose gradient it writes (first), -1
  int *gwrite2;     // a second one (BN backward: beta), -1
  int cap_ops;
  int cap_tensors;
  char *err;
  size_t errlen;
} FuseBuild;

// fuse_ops.c
int fuse_make_ops(FuseBuild *b);
int fuse_inline(FuseBuild *b);
const IrConvAttr *fuse_conv_attr(const IrGraph *g, const IrNode *n);
const IrPoolAttr *fuse_pool_attr(const IrGraph *g, const IrNode *n);
const IrBnAttr *fuse_bn_attr(const IrGraph *g, const IrNode *n);
const IrXentAttr *fuse_xent_attr(const IrGraph *g, const IrNode *n);
int fuse_root(const FusePlan *fp, int t, int *c0);

#endif
