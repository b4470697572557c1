// compiler/emit_dot.c — naoc --emit dot (see emit_dot.h).
//
// Colours follow the op kind so the eye finds the structure: separable
// convolutions blue, plain convolutions green, max pools red, average pools
// orange, identities grey; inputs and outputs are plain boxes.
#include "compiler/emit_dot.h"

#include <stdio.h>

#include "compiler/ops.h"

static const char *op_color(const NaoOpInfo *oi) {
  switch (oi->kind) {
    case NAO_OPK_SEPCONV: return "#a6cee3";
    case NAO_OPK_CONV:
    case NAO_OPK_CONV_PAIR: return "#b2df8a";
    case NAO_OPK_POOL: return oi->pool_max ? "#fb9a99" : "#fdbf6f";
    case NAO_OPK_IDENTITY: return "#e0e0e0";
  }
  return "#ffffff";
}

// The graph node that state `id` of cell `p` is drawn as.
static void state_name(const char *p, int id, char *buf, size_t cap) {
  if (id < 2) snprintf(buf, cap, "%s_in%d", p, id);
  else snprintf(buf, cap, "%s_n%d", p, id);
}

static void cell_graph(const NetCell *c, const char *p, const char *title, StrBuf *out) {
  sb_printf(out, "  subgraph cluster_%s {\n", p);
  sb_printf(out, "    label=\"%s\"; labelloc=b; fontsize=14; style=rounded; color=\"#999999\";\n", title);
  sb_printf(out, "    %s_in0 [label=\"h[i-2]\", shape=box, style=filled, fillcolor=\"#ffffb3\"];\n", p);
  sb_printf(out, "    %s_in1 [label=\"h[i-1]\", shape=box, style=filled, fillcolor=\"#ffffb3\"];\n", p);
  sb_printf(out, "    { rank=min; %s_in0; %s_in1; }\n", p, p);
  for (int b = 0; b < c->n_nodes; b++) {
    const NetNode *n = &c->node[b];
    int id = b + 2, ins[2] = {n->x_in, n->y_in}, ops[2] = {n->x_op, n->y_op};
    sb_printf(out, "    %s_n%d [label=\"add\\n%d\", shape=ellipse, style=filled, fillcolor=\"#f0f0f0\"];\n", p, id, id);
    for (int j = 0; j < 2; j++) {
      const NaoOpInfo *oi = nao_op_info(ops[j]);
      char from[32];
      state_name(p, ins[j], from, sizeof from);
      sb_printf(out, "    %s_n%d_%c [label=\"%s\", shape=box, style=\"rounded,filled\", fillcolor=\"%s\"];\n",
                p, id, j ? 'y' : 'x', oi->name, op_color(oi));
      sb_printf(out, "    %s -> %s_n%d_%c;\n", from, p, id, j ? 'y' : 'x');
      sb_printf(out, "    %s_n%d_%c -> %s_n%d;\n", p, id, j ? 'y' : 'x', p, id);
    }
  }
  int ids[NAO_MAX_STATES];
  int n = netcell_loose_ends(c, ids);
  sb_printf(out, "    %s_concat [label=\"concat\", shape=box, style=filled, fillcolor=\"#ffffb3\"];\n", p);
  for (int i = 0; i < n; i++) {
    char from[32];
    state_name(p, ids[i], from, sizeof from);
    sb_printf(out, "    %s -> %s_concat;\n", from, p);
  }
  sb_printf(out, "    %s_out [label=\"h[i]\", shape=box, style=filled, fillcolor=\"#ffffb3\"];\n", p);
  sb_printf(out, "    %s_concat -> %s_out;\n", p, p);
  sb_printf(out, "    { rank=max; %s_out; }\n", p);
  sb_append(out, "  }\n");
}

void emit_dot(const NetSpec *ns, StrBuf *out) {
  // The name in a comment, kept to characters that cannot end the comment.
  char name[NAO_NAME_MAX];
  size_t n = 0;
  for (const char *p = ns->name; *p && n + 1 < sizeof name; p++)
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')
      name[n++] = *p;
  name[n] = '\0';
  sb_printf(out, "// %s: the normal and the reduction cell\n", n ? name : "network");
  sb_append(out, "digraph cells {\n");
  sb_append(out, "  rankdir=BT; newrank=true; nodesep=0.25; ranksep=0.35;\n");
  sb_append(out, "  node [fontname=\"Helvetica\", fontsize=11, height=0.3, margin=\"0.08,0.04\"];\n");
  sb_append(out, "  edge [arrowsize=0.6, color=\"#555555\"];\n");
  cell_graph(&ns->cell[CELL_NORMAL], "normal", "normal cell", out);
  cell_graph(&ns->cell[CELL_REDUCTION], "reduction", "reduction cell", out);
  sb_append(out, "}\n");
}
