// compiler/ops.h — the operation vocabularies of NAO, by id and by name.
//
// Ids are those of the reference implementation (NAO-SPEC.md §1a.3): 0-4 the
// 5-op space of NAO-WS and NAONet-B, 5-15 the 11-op space of NAONet-A. Names
// and ids are in one-to-one correspondence, so that token sequence -> .nao ->
// token sequence is exact. Where the two vocabularies hold ops that compute the
// same thing (ids 4/5, 3/11) the 11-op twin carries the suffix "_l" (large
// vocabulary); where they differ (average pools that count padding or not) the
// name says how it divides.
#ifndef NAO_OPS_H
#define NAO_OPS_H

typedef enum {
  NAO_OP_SEP3X3 = 0,
  NAO_OP_SEP5X5 = 1,
  NAO_OP_AVG3X3 = 2,          // padding not counted in the divisor
  NAO_OP_MAX3X3 = 3,
  NAO_OP_IDENTITY = 4,
  NAO_OP_IDENTITY_L = 5,      // same as identity, 11-op vocabulary
  NAO_OP_CONV1X1 = 6,
  NAO_OP_CONV3X3 = 7,
  NAO_OP_CONV1X3_3X1 = 8,
  NAO_OP_CONV1X7_7X1 = 9,
  NAO_OP_MAX2X2 = 10,         // zero-pad right/bottom by 1, then 2x2 max pool
  NAO_OP_MAX3X3_L = 11,       // same as max3x3, 11-op vocabulary
  NAO_OP_MAX5X5 = 12,
  NAO_OP_AVG2X2 = 13,         // zero-pad right/bottom by 1, then 2x2 average (divisor 4)
  NAO_OP_AVG3X3_COUNTPAD = 14,// padding counted in the divisor (PyTorch's default)
  NAO_OP_AVG5X5 = 15,         // padding counted in the divisor
  NAO_OP_COUNT = 16
} NaoOp;

typedef enum {
  NAO_OPK_SEPCONV,   // ReLU dw pw BN ReLU dw pw BN
  NAO_OPK_CONV,      // ReLU conv BN
  NAO_OPK_CONV_PAIR, // ReLU conv(1xk) BN ReLU conv(kx1) BN
  NAO_OPK_POOL,
  NAO_OPK_IDENTITY,  // FactorizedReduce when the branch has stride 2
} NaoOpKind;

typedef struct {
  NaoOp id;
  const char *name;
  const char *summary;   // one line for docs and --help
  int vocab;             // 5 or 11: the vocabulary the id belongs to
  NaoOpKind kind;
  int k;                 // kernel size (pools, convs); 0 for identity
  int pool_max;          // pools: 1 max, 0 average
  int pad;               // symmetric padding of the pool / conv (before stride)
  int pad_counted;       // pools: padded cells are zeros that take part
  int pad_right_bottom;  // ops 10 and 13: explicit zero pad right/bottom by 1 first
} NaoOpInfo;

const NaoOpInfo *nao_op_info(int id);            // NULL when out of range
const NaoOpInfo *nao_op_by_name(const char *name); // NULL when unknown
// The known name closest to `name` by edit distance, or NULL when none is close.
const char *nao_op_suggest(const char *name);

#endif
