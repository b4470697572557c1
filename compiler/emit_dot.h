// compiler/emit_dot.h — Graphviz drawings of a network's two cells
// (naoc --emit dot), in the style of the NAO paper's cell figures.
//
// One digraph with a cluster per cell, drawn bottom to top: the cell inputs
// h[i-2] and h[i-1] (states 0 and 1) at the bottom, each branch as a box
// holding its op, each node as an "add" joining its two branches, and the
// loose ends meeting in a "concat" that gives the cell output h[i] at the
// top. Every graph node and edge is named after the cell and state it draws
// (normal_n3, normal_n3_x), the output is deterministic, and `dot -Tpng`
// renders it as it is.
#ifndef NAO_EMIT_DOT_H
#define NAO_EMIT_DOT_H

#include "compiler/netspec.h"
#include "compiler/util.h"

void emit_dot(const NetSpec *ns, StrBuf *out);

#endif
