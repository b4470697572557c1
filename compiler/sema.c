// compiler/sema.c — the checks of a whole file: the network block and its
// settings, which cells there are, and the shapes (netspec_layout).
//
// Order: the network block (one), its settings (each known, given once, of
// the right type and range), the dataset against explicit input/classes/stem,
// the cells (sema_cell.c), the node count against `nodes`, and last the shape
// inference, only when everything before was clean (its errors are about
// sizes, which only make sense for an otherwise valid network). Settings not
// given keep netspec_init's defaults, then the preset's.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/sema_impl.h"

const char *sema_tok(const AstTok *t, char *buf, size_t cap) {
  ast_tok_copy(t, buf, cap);
  return buf;
}

// ---------------------------------------------------------------- network block

// A second network block (reported after the first block's contents, so
// errors come in the order of the file).
static void sema_more_networks(Sema *s) {
  const AstFile *f = s->file;
  for (const AstNetwork *n = f->networks ? f->networks->next : NULL; n; n = n->next) {
    diag_error(s->diag, nao_loc_span(n->keyword, n->name.kind ? n->name.loc : n->keyword),
               "a second network block; a file describes one network");
    diag_note(s->diag, nao_loc_span(f->networks->keyword, f->networks->name.kind ? f->networks->name.loc
                                                                              : f->networks->keyword),
              "the first one is here");
  }
}

static void sema_networks(Sema *s) {
  s->network = s->file->networks;
  if (!s->network) return;
  const AstNetwork *n = s->network;
  s->locs->network = nao_loc_span(n->keyword, n->name.kind ? n->name.loc : n->keyword);
  if (n->name.kind && !n->name.bad) {
    if (n->name.len >= NAO_NAME_MAX)
      diag_error(s->diag, n->name.loc, "the network's name is too long (%u characters; at most %d)",
                 n->name.len, NAO_NAME_MAX - 1);
    else
      sema_tok(&n->name, s->spec->name, sizeof s->spec->name);
  }
}

// ---------------------------------------------------------------- settings

static const char *kind_word(AstTokKind k) {
  switch (k) {
    case AST_TOK_IDENT: return "a name";
    case AST_TOK_NUMBER: return "a number";
    case AST_TOK_STRING: return "a string";
    case AST_TOK_DIMS: return "a shape";
    default: return "nothing";
  }
}

// The value's token kind must fit the setting's type.
static int value_kind_ok(Sema *s, const NaoSettingInfo *si, const AstTok *v) {
  AstTokKind want = si->type == SETV_NAME ? AST_TOK_IDENT
                    : si->type == SETV_SHAPE ? AST_TOK_DIMS
                                             : AST_TOK_NUMBER;
  if (v->kind == want) return 1;
  if (want == AST_TOK_DIMS && v->kind == AST_TOK_NUMBER) return 1;  // "input 3": shape message
  const char *need = si->type == SETV_NAME    ? "a name"
                     : si->type == SETV_SHAPE ? "a shape CxHxW (e.g. 3x32x32)"
                     : si->type == SETV_INT   ? "an integer"
                                              : "a number";
  char buf[80];
  if (v->kind == AST_TOK_STRING)
    diag_error(s->diag, v->loc, "%s needs %s, not a string%s", si->name, need,
               si->type == SETV_NAME ? " (write the name without quotes)" : "");
  else
    diag_error(s->diag, v->loc, "%s needs %s, not %s '%s'", si->name, need, kind_word(v->kind),
               sema_tok(v, buf, sizeof buf));
  return 0;
}

// Checks one setting's value and writes it into *ns.
static int setting_value(Sema *s, const NaoSettingInfo *si, const AstSetting *st, NetSpec *ns) {
  const AstTok *v = &st->value;
  if (v->bad) return 0;
  if (!value_kind_ok(s, si, v)) return 0;
  char text[80], err[320];
  sema_tok(v, text, sizeof text);
  int rc = -1, bad_part = -1;
  int chw[3];
  switch (si->type) {
    case SETV_NAME:
      rc = si->id == SET_DATASET ? nao_setting_dataset(text, &ns->dataset, err, sizeof err)
                                 : nao_setting_stem(text, &ns->stem, err, sizeof err);
      break;
    case SETV_SHAPE:
      rc = nao_setting_shape(text, chw, &bad_part, err, sizeof err);
      if (rc == 0) ns->in_channels = chw[0], ns->in_height = chw[1], ns->in_width = chw[2];
      break;
    case SETV_INT: {
      int *dst = si->id == SET_CLASSES ? &ns->classes
                 : si->id == SET_CHANNELS ? &ns->channels
                 : si->id == SET_LAYERS ? &ns->layers
                                        : &ns->nodes;
      rc = nao_setting_int(si, text, dst, err, sizeof err);
      break;
    }
    case SETV_REAL: {
      double *dst = si->id == SET_AUX_WEIGHT ? &ns->aux_weight
                    : si->id == SET_DROP_PATH_KEEP ? &ns->drop_path_keep
                                                   : &ns->dropout_keep;
      rc = nao_setting_real(si, text, dst, err, sizeof err);
      break;
    }
  }
  if (rc == 0) return 1;
  NaoLoc at = v->loc;
  if (bad_part >= 0) {  // point at the wrong part of CxHxW
    uint32_t b = 0, e;
    for (int part = 0; part < bad_part && b < v->len; b++) part += v->text[b] == 'x';
    for (e = b; e < v->len && v->text[e] != 'x'; e++) {}
    at = nao_loc(v->loc.begin + b, v->loc.begin + e);
  }
  diag_error(s->diag, at, "%s", err);
  return 0;
}

static void unknown_setting(Sema *s, const AstSetting *st) {
  char name[80];
  sema_tok(&st->name, name, sizeof name);
  const char *near = nao_setting_suggest(name);
  if (near) {
    diag_error(s->diag, st->name.loc, "unknown setting '%s'; did you mean '%s'?", name, near);
    return;
  }
  StrBuf sb = {0};
  for (int i = 0; i < SET_COUNT; i++) sb_printf(&sb, "%s%s", i ? ", " : "", nao_setting_info(i)->name);
  diag_error(s->diag, st->name.loc, "unknown setting '%s'; the settings are %s", name, sb.data);
  sb_free(&sb);
}

// Checks every setting in the order written: known, given once, a good value
// (kept in *vals until sema_apply).
static void sema_settings(Sema *s, NetSpec *vals) {
  if (!s->network) return;
  for (const AstSetting *st = s->network->settings.head; st; st = st->next) {
    char name[80];
    const NaoSettingInfo *si = st->name.bad ? NULL : nao_setting_by_name(sema_tok(&st->name, name, sizeof name));
    if (!si) {
      if (!st->name.bad) unknown_setting(s, st);
      continue;
    }
    if (s->setting[si->id]) {
      diag_error(s->diag, st->loc, "%s is set twice", si->name);
      diag_note(s->diag, s->setting[si->id]->loc, "%s was first set here", si->name);
      continue;
    }
    s->setting[si->id] = st;
    s->locs->given |= 1u << si->id;
    s->locs->setting[si->id] = st->loc;
    s->locs->value[si->id] = st->value.loc;
    s->setting_ok[si->id] = setting_value(s, si, st, vals);
  }
  if (s->network->settings.n > AST_MAX_LIST)
    diag_error(s->diag, s->network->open, "the network block has %d settings; there are only %d kinds",
               s->network->settings.n, SET_COUNT);
}

// Applies the good settings over the defaults: the dataset preset first, then
// the rest, and judges an explicit input, classes or stem against the preset.
static void sema_apply(Sema *s, const NetSpec *vals) {
  NetSpec *ns = s->spec;
  const int *ok = s->setting_ok;
  if (ok[SET_DATASET]) netspec_apply_dataset(ns, vals->dataset);
  NetSpec preset = *ns;
  if (ok[SET_INPUT]) ns->in_channels = vals->in_channels, ns->in_height = vals->in_height, ns->in_width = vals->in_width;
  if (ok[SET_CLASSES]) ns->classes = vals->classes;
  if (ok[SET_STEM]) ns->stem = vals->stem;
  if (ok[SET_CHANNELS]) ns->channels = vals->channels;
  if (ok[SET_LAYERS]) ns->layers = vals->layers;
  if (ok[SET_NODES]) ns->nodes = vals->nodes;
  if (ok[SET_AUX_WEIGHT]) ns->aux_weight = vals->aux_weight;
  if (ok[SET_DROP_PATH_KEEP]) ns->drop_path_keep = vals->drop_path_keep;
  if (ok[SET_DROPOUT_KEEP]) ns->dropout_keep = vals->dropout_keep;
  int explicit_shape = s->setting[SET_INPUT] || s->setting[SET_CLASSES] || s->setting[SET_STEM];
  if (!explicit_shape) return;
  if (!s->setting[SET_DATASET]) {
    ns->dataset = DATASET_NONE;
    return;
  }
  if (!ok[SET_DATASET]) return;
  const DatasetInfo *di = dataset_info(ns->dataset);
  char have[64], want[64];
  for (int id = SET_INPUT; id <= SET_STEM; id++) {
    if (!ok[id]) continue;
    if (id == SET_INPUT) {
      if (ns->in_channels == preset.in_channels && ns->in_height == preset.in_height && ns->in_width == preset.in_width) continue;
      snprintf(have, sizeof have, "input %dx%dx%d", ns->in_channels, ns->in_height, ns->in_width);
      snprintf(want, sizeof want, "%dx%dx%d", di->in_channels, di->in_height, di->in_width);
    } else if (id == SET_CLASSES) {
      if (ns->classes == preset.classes) continue;
      snprintf(have, sizeof have, "classes %d", ns->classes);
      snprintf(want, sizeof want, "%d classes", di->classes);
    } else {
      if (ns->stem == preset.stem) continue;
      snprintf(have, sizeof have, "stem %s", stem_name(ns->stem));
      snprintf(want, sizeof want, "the %s stem", stem_name(di->stem));
    }
    diag_error(s->diag, s->setting[id]->loc,
               "%s contradicts dataset %s, which has %s; drop the dataset to describe other data",
               have, di->name, want);
    diag_note(s->diag, s->setting[SET_DATASET]->loc, "the dataset is set here");
  }
}

// ---------------------------------------------------------------- cells

static void sema_cells(Sema *s) {
  static const char *const names[2] = {"normal", "reduction"};
  for (const AstCell *c = s->file->cells; c; c = c->next) {
    char kind[80];
    sema_tok(&c->kind, kind, sizeof kind);
    int k = strcmp(kind, "normal") == 0 ? CELL_NORMAL : strcmp(kind, "reduction") == 0 ? CELL_REDUCTION : -1;
    if (k < 0) {
      s->unknown_cell = 1;
      if (c->kind.bad) continue;
      const char *near = nao_closest(kind, names, 2);
      if (near)
        diag_error(s->diag, c->kind.loc, "unknown cell kind '%s'; did you mean '%s'?", kind, near);
      else
        diag_error(s->diag, c->kind.loc, "unknown cell kind '%s'; a cell is 'normal' or 'reduction'", kind);
      continue;
    }
    if (s->cell[k]) {
      diag_error(s->diag, nao_loc_span(c->keyword, c->kind.loc), "cell '%s' is defined twice", names[k]);
      diag_note(s->diag, nao_loc_span(s->cell[k]->keyword, s->cell[k]->kind.loc),
                "cell '%s' was first defined here", names[k]);
      continue;
    }
    s->cell[k] = c;
    sema_cell(s, c, (CellKind)k);
  }
  if (s->file->n_cells > AST_MAX_ITEMS)
    diag_error(s->diag, s->file->cells_tail->loc, "the file has %d cells; a network has two",
               s->file->n_cells);
}

// Both cells have the same number of nodes, equal to `nodes` when given.
static void sema_node_count(Sema *s) {
  NetSpec *ns = s->spec;
  static const char *const names[2] = {"normal", "reduction"};
  const AstSetting *given = s->setting_ok[SET_NODES] ? s->setting[SET_NODES] : NULL;
  for (int k = 0; k < 2; k++) {
    if (!s->cell_ok[k]) continue;
    int n = ns->cell[k].n_nodes;
    if (given && n != ns->nodes) {
      diag_error(s->diag, s->locs->cell[k].cell, "cell '%s' has %d node%s, but nodes is %d", names[k], n,
                 n == 1 ? "" : "s", ns->nodes);
      diag_note(s->diag, given->loc, "nodes is set here");
      s->cell_ok[k] = 0;
    }
  }
  if (!given && s->cell_ok[0] && s->cell_ok[1] && ns->cell[0].n_nodes != ns->cell[1].n_nodes) {
    diag_error(s->diag, s->locs->cell[1].cell,
               "cell 'reduction' has %d node%s and cell 'normal' %d; both cells need the same number",
               ns->cell[1].n_nodes, ns->cell[1].n_nodes == 1 ? "" : "s", ns->cell[0].n_nodes);
    diag_note(s->diag, s->locs->cell[0].cell, "cell 'normal' is defined here");
    s->cell_ok[1] = 0;
  }
  if (!given && s->cell_ok[0]) ns->nodes = ns->cell[0].n_nodes;
}

// What the file lacks, unless a syntax error explains it.
static void sema_missing(Sema *s) {
  const AstFile *f = s->file;
  if (f->syntax_errors) return;
  if (!f->networks && !f->cells) {
    diag_error(s->diag, nao_loc(0, 0), "%s: a .nao file holds a network block and cells 'normal' and 'reduction'",
               s->diag->src->len ? "no network in this file" : "empty file");
    return;
  }
  if (!f->networks)
    diag_error(s->diag, nao_loc_span(f->cells->keyword, f->cells->kind.loc),
               "missing network block: a file names its network and settings first, e.g. "
               "'network net { dataset cifar10; }'");
  static const char *const names[2] = {"normal", "reduction"};
  for (int k = 0; k < 2 && !s->unknown_cell; k++)
    if (!s->cell[k])
      diag_error(s->diag, f->networks ? s->locs->network : nao_loc(f->end.end, f->end.end),
                 "missing cell '%s': a network needs a normal and a reduction cell, e.g. "
                 "'cell %s { node 2 = sep3x3(0) + identity(1); }'",
                 names[k], names[k]);
}

// ---------------------------------------------------------------- shapes

// The setting a shape error is blamed on: the first of `ids` written in the
// file, else the network block's header.
static NaoLoc blame(const Sema *s, const int *ids, int n) {
  for (int i = 0; i < n; i++)
    if (s->setting[ids[i]]) return s->setting[ids[i]]->loc;
  return s->locs->network;
}

static void sema_layout(Sema *s) {
  NetLayout *layout = xmalloc(sizeof *layout);
  char err[512];
  const NetSpec *ns = s->spec;
  LayoutError e = netspec_layout(ns, layout, err, sizeof err);
  static const int size_ids[] = {SET_INPUT, SET_DATASET, SET_STEM, SET_LAYERS};
  static const int chan_ids[] = {SET_CHANNELS, SET_STEM, SET_DATASET};
  static const int aux_ids[] = {SET_AUX_WEIGHT, SET_INPUT, SET_DATASET};
  switch (e) {
    case LAYOUT_OK: break;
    case LAYOUT_ODD_SIZE:
    case LAYOUT_TOO_SMALL:
      diag_error(s->diag, blame(s, size_ids, 4), "input %dx%dx%d does not fit this network: %s; %s",
                 ns->in_channels, ns->in_height, ns->in_width, err,
                 ns->stem == STEM_CIFAR
                     ? "with the cifar stem, height and width must be multiples of 4"
                     : "with the imagenet stem, heights and widths that are multiples of 32 work");
      break;
    case LAYOUT_ODD_CHANNELS:
      diag_error(s->diag, blame(s, chan_ids, 3), "channels %d is odd: %s; %d or %d would do", ns->channels,
                 err, ns->channels - 1, ns->channels + 1);
      break;
    case LAYOUT_AUX_SIZE:
      if (s->setting[SET_AUX_WEIGHT])
        diag_error(s->diag, s->setting[SET_AUX_WEIGHT]->loc, "%s", err);
      else
        diag_error(s->diag, blame(s, aux_ids, 3),
                   "%s; the auxiliary head is on by default (aux_weight 0.4), 'aux_weight 0;' removes it", err);
      break;
    case LAYOUT_BAD_CELL: nao_internal("sema passed cells that netspec_layout rejects: %s", err);
  }
  free(layout);
}

// ---------------------------------------------------------------- entry

int sema_check(const AstFile *file, Diag *diag, NetSpec *out, NetSpecLocs *locs) {
  Sema s = {0};
  s.diag = diag;
  s.file = file;
  s.spec = out;
  s.locs = locs;
  netspec_init(out);
  memset(locs, 0, sizeof *locs);
  int before = diag->n_errors;
  sema_networks(&s);
  NetSpec vals;
  netspec_init(&vals);
  sema_settings(&s, &vals);
  sema_apply(&s, &vals);
  sema_cells(&s);
  sema_more_networks(&s);
  sema_node_count(&s);
  sema_missing(&s);
  if (diag->n_errors == before && !file->syntax_errors) sema_layout(&s);
  return diag->n_errors - before;
}
