// compiler/write_nao.c — NetSpec -> canonical .nao text (see write_nao.h).
//
// The dataset preset is written as `dataset NAME;` when the spec's input,
// classes and stem are the preset's; otherwise they are written out
// (`input CxHxW; classes K; stem S;`) and no dataset, which is how the
// language says "other data".
#include "compiler/write_nao.h"

#include <string.h>

#include "compiler/emit_seq.h"
#include "compiler/ops.h"
#include "compiler/settings.h"

static int ident_char(char c, int first) {
  return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (!first && c >= '0' && c <= '9');
}

// The name as an identifier of the language: [A-Za-z_][A-Za-z0-9_]* parts
// joined by single '-', not a keyword.
static void write_name(const char *name, StrBuf *out) {
  char buf[NAO_NAME_MAX + 2];
  size_t n = 0;
  if (!ident_char(name[0], 1)) buf[n++] = '_';  // a digit or '-' cannot start a name
  for (const char *p = name; *p && n < NAO_NAME_MAX - 1; p++) {
    int joins = *p == '-' && n > 0 && buf[n - 1] != '-' && ident_char(p[1], 0);
    buf[n++] = ident_char(*p, 0) || joins ? *p : '_';
  }
  buf[n] = '\0';
  if (!strcmp(buf, "network") || !strcmp(buf, "cell") || !strcmp(buf, "node")) strcat(buf, "_");
  sb_append(out, buf);
}

static void write_comment(const char *comment, StrBuf *out) {
  if (!comment) return;
  const char *p = comment;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    sb_append(out, len ? "// " : "//");
    sb_appendn(out, p, len);
    sb_append(out, "\n");
    p += len + (nl ? 1 : 0);
  }
}

static int matches_preset(const NetSpec *ns) {
  const DatasetInfo *di = dataset_info(ns->dataset);
  return di && di->in_channels == ns->in_channels && di->in_height == ns->in_height &&
         di->in_width == ns->in_width && di->classes == ns->classes && di->stem == ns->stem;
}

static void write_settings(const NetSpec *ns, StrBuf *out) {
  if (matches_preset(ns)) {
    sb_printf(out, "  dataset %s;\n", dataset_info(ns->dataset)->name);
  } else {
    sb_printf(out, "  input %dx%dx%d;\n  classes %d;\n  stem %s;\n", ns->in_channels, ns->in_height,
              ns->in_width, ns->classes, stem_name(ns->stem));
  }
  sb_printf(out, "  channels %d;\n  layers %d;\n  nodes %d;\n", ns->channels, ns->layers, ns->cell[0].n_nodes);
  char v[40];
  nao_format_real(ns->aux_weight, v, sizeof v);
  sb_printf(out, "  aux_weight %s;\n", v);
  nao_format_real(ns->drop_path_keep, v, sizeof v);
  sb_printf(out, "  drop_path_keep %s;\n", v);
  nao_format_real(ns->dropout_keep, v, sizeof v);
  sb_printf(out, "  dropout_keep %s;\n", v);
}

static void write_cell(const NetSpec *ns, CellKind k, StrBuf *out) {
  const NetCell *c = &ns->cell[k];
  sb_printf(out, "\ncell %s {\n", k == CELL_NORMAL ? "normal" : "reduction");
  for (int b = 0; b < c->n_nodes; b++) {
    const NetNode *n = &c->node[b];
    sb_printf(out, "  node %d = %s(%d) + %s(%d);\n", b + 2, nao_op_info(n->x_op)->name, n->x_in,
              nao_op_info(n->y_op)->name, n->y_in);
  }
  int ids[NAO_MAX_STATES];
  int n = netcell_loose_ends(c, ids);
  sb_append(out, n == 1 ? "  // output: state" : "  // output: states");
  for (int i = 0; i < n; i++) sb_printf(out, "%s %d", i ? (i == n - 1 ? " and" : ",") : "", ids[i]);
  sb_append(out, n == 1 ? "\n}\n" : " concatenated\n}\n");
}

void write_nao(const NetSpec *ns, const char *comment, StrBuf *out) {
  NAO_ASSERT(netcell_check(&ns->cell[0], (char[160]){0}, 160) == 0);
  NAO_ASSERT(netcell_check(&ns->cell[1], (char[160]){0}, 160) == 0);
  write_comment(comment, out);
  char arch[NAO_ARCH_TEXT_MAX];
  netspec_format_arch(ns, arch, sizeof arch);
  sb_printf(out, "// arch: %s\n", arch);
  sb_append(out, "network ");
  if (ns->name[0]) {
    write_name(ns->name, out);
    sb_append(out, " ");
  }
  sb_append(out, "{\n");
  write_settings(ns, out);
  sb_append(out, "}\n");
  write_cell(ns, CELL_NORMAL, out);
  write_cell(ns, CELL_REDUCTION, out);
}
