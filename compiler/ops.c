// compiler/ops.c — the table behind ops.h: one row per reference op id.
#include "compiler/ops.h"

#include <stddef.h>
#include <string.h>

static const NaoOpInfo op_table[NAO_OP_COUNT] = {
    {NAO_OP_SEP3X3, "sep3x3", "separable conv 3x3, twice (ReLU dw pw BN ReLU dw pw BN)", 5, NAO_OPK_SEPCONV, 3, 0, 1, 0, 0},
    {NAO_OP_SEP5X5, "sep5x5", "separable conv 5x5, twice", 5, NAO_OPK_SEPCONV, 5, 0, 2, 0, 0},
    {NAO_OP_AVG3X3, "avg3x3", "average pool 3x3, pad 1, padding not counted", 5, NAO_OPK_POOL, 3, 0, 1, 0, 0},
    {NAO_OP_MAX3X3, "max3x3", "max pool 3x3, pad 1", 5, NAO_OPK_POOL, 3, 1, 1, 0, 0},
    {NAO_OP_IDENTITY, "identity", "identity (factorized reduction at stride 2)", 5, NAO_OPK_IDENTITY, 0, 0, 0, 0, 0},
    {NAO_OP_IDENTITY_L, "identity_l", "identity of the 11-op vocabulary (same as identity)", 11, NAO_OPK_IDENTITY, 0, 0, 0, 0, 0},
    {NAO_OP_CONV1X1, "conv1x1", "ReLU conv 1x1 BN", 11, NAO_OPK_CONV, 1, 0, 0, 0, 0},
    {NAO_OP_CONV3X3, "conv3x3", "ReLU conv 3x3 BN", 11, NAO_OPK_CONV, 3, 0, 1, 0, 0},
    {NAO_OP_CONV1X3_3X1, "conv1x3_3x1", "ReLU conv 1x3 BN ReLU conv 3x1 BN", 11, NAO_OPK_CONV_PAIR, 3, 0, 1, 0, 0},
    {NAO_OP_CONV1X7_7X1, "conv1x7_7x1", "ReLU conv 1x7 BN ReLU conv 7x1 BN", 11, NAO_OPK_CONV_PAIR, 7, 0, 3, 0, 0},
    {NAO_OP_MAX2X2, "max2x2", "zero-pad right and bottom, max pool 2x2", 11, NAO_OPK_POOL, 2, 1, 0, 1, 1},
    {NAO_OP_MAX3X3_L, "max3x3_l", "max pool 3x3 of the 11-op vocabulary (same as max3x3)", 11, NAO_OPK_POOL, 3, 1, 1, 0, 0},
    {NAO_OP_MAX5X5, "max5x5", "max pool 5x5, pad 2", 11, NAO_OPK_POOL, 5, 1, 2, 0, 0},
    {NAO_OP_AVG2X2, "avg2x2", "zero-pad right and bottom, average pool 2x2 (divisor 4)", 11, NAO_OPK_POOL, 2, 0, 0, 1, 1},
    {NAO_OP_AVG3X3_COUNTPAD, "avg3x3_countpad", "average pool 3x3, pad 1, padding counted", 11, NAO_OPK_POOL, 3, 0, 1, 1, 0},
    {NAO_OP_AVG5X5, "avg5x5", "average pool 5x5, pad 2, padding counted", 11, NAO_OPK_POOL, 5, 0, 2, 1, 0},
};

const NaoOpInfo *nao_op_info(int id) {
  if (id < 0 || id >= NAO_OP_COUNT) return NULL;
  return &op_table[id];
}

const NaoOpInfo *nao_op_by_name(const char *name) {
  for (int i = 0; i < NAO_OP_COUNT; i++)
    if (strcmp(op_table[i].name, name) == 0) return &op_table[i];
  return NULL;
}

// Levenshtein distance, capped: names are short.
static int edit_distance(const char *a, const char *b) {
  enum { MAXLEN = 64 };
  size_t la = strlen(a), lb = strlen(b);
  if (la >= MAXLEN || lb >= MAXLEN) return MAXLEN;
  int row[MAXLEN + 1];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int up = row[j];
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int best = diag + cost;
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

const char *nao_op_suggest(const char *name) {
  const char *best = NULL;
  int best_d = 3;  // at most two edits away
  for (int i = 0; i < NAO_OP_COUNT; i++) {
    int d = edit_distance(name, op_table[i].name);
    if (d < best_d) {
      best_d = d;
      best = op_table[i].name;
    }
  }
  return best;
}
