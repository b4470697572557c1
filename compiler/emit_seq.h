// compiler/emit_seq.h — the token-sequence view of a network (naoc --emit seq).
//
// The reference scripts' fixed_arc format: 8B space-separated integers, the
// normal cell's 4B tokens (x_in x_op y_in y_op per node) then the reduction
// cell's, and a newline. netspec_parse_arch reads it back exactly.
#ifndef NAO_EMIT_SEQ_H
#define NAO_EMIT_SEQ_H

#include "compiler/netspec.h"
#include "compiler/util.h"

enum { NAO_ARCH_TEXT_MAX = 8 * NAO_MAX_NODES * 4 + 1 };  // ids < 100: 3 bytes a token

void emit_seq(const NetSpec *ns, StrBuf *out);

#endif
