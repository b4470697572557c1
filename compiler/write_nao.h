// compiler/write_nao.h — a NetSpec as canonical .nao text.
//
// Used by naoc --from-seq and --emit nao, and by the search to write the
// architectures it finds. The text reads like the paper's cell figures: a
// header comment (the caller's lines and the arch string), the network block
// with every setting spelled out, then both cells as node lines with a
// comment naming their output. Checking the text gives back the same NetSpec:
// the same cells token for token, the same settings bit for bit (reals are
// written in the shortest form that reads back exactly).
#ifndef NAO_WRITE_NAO_H
#define NAO_WRITE_NAO_H

#include "compiler/netspec.h"
#include "compiler/util.h"

// `comment`: lines for the header comment ('\n' separates them), or NULL.
// The cells must be valid (netcell_check); the name, when not a valid
// identifier, is written with its other characters replaced by '_'.
void write_nao(const NetSpec *ns, const char *comment, StrBuf *out);

#endif
