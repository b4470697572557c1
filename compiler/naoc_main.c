// compiler/naoc_main.c — the naoc command: check a .nao file and print one of
// its views, or write a .nao file from a token sequence.
//
// Exit codes: 0 success, 1 bad input (diagnostics printed), 2 bad usage, 70
// internal error or a view this build does not have. Each view is a function
// of the checked unit that fills a StrBuf; the driver owns the output file,
// so a view never half-writes one.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/emit_cuda.h"
#include "compiler/emit_dot.h"
#include "compiler/emit_seq.h"
#include "compiler/emit_stats.h"
#include "compiler/lower.h"
#include "compiler/frontend.h"
#include "compiler/naoc_trainer.h"
#include "compiler/settings.h"
#include "compiler/write_nao.h"

#define NAOC_VERSION "0.1.0"

// ---------------------------------------------------------------- views

// A view fills `out` from a checked unit and returns an exit code (a view
// that finds an error reports it through u->diag or stderr and returns 1 or
// 70; nothing is written then).
typedef int (*NaocView)(NaoUnit *u, StrBuf *out);

static int view_seq(NaoUnit *u, StrBuf *out) {
  emit_seq(&u->spec, out);
  return NAO_EXIT_OK;
}
static int view_dot(NaoUnit *u, StrBuf *out) {
  emit_dot(&u->spec, out);
  return NAO_EXIT_OK;
}
static int view_nao(NaoUnit *u, StrBuf *out) {
  char comment[600];
  snprintf(comment, sizeof comment, "canonical form of %s, written by naoc --emit nao", u->src.name);
  write_nao(&u->spec, comment, out);
  return NAO_EXIT_OK;
}

// Lowering a checked unit can only fail on an internal inconsistency (sema
// ran the same layout), so such a failure is reported as one (exit 70).
static int lowering_failed(const NaoUnit *u, const char *err) {
  fprintf(stderr, "naoc: internal error: %s: %s\n", u->src.name, err);
  return NAO_EXIT_INTERNAL;
}

static int view_stats(NaoUnit *u, StrBuf *out) {
  char err[512];
  if (emit_stats(&u->spec, out, err, sizeof err) != 0) return lowering_failed(u, err);
  return NAO_EXIT_OK;
}

// The training graph as the trainer builds it: forward, concat views, backward.
static int view_ir(NaoUnit *u, StrBuf *out) {
  char err[512];
  ParamTable pt;
  params_init(&pt);
  IrGraph g;
  ir_init(&g, &pt, IR_MODE_TRAIN);
  LowerOptions lo;
  lower_options_init(&lo, IR_MODE_TRAIN);
  int rc = lower_network(&u->spec, &lo, &pt, &g, err, sizeof err);
  if (rc == 0 && ir_concat_to_views(&g, err, sizeof err) < 0) rc = -1;
  if (rc == 0 && ir_autodiff(&g, err, sizeof err) < 0) rc = -1;
  if (rc == 0) ir_dump(&g, out);
  ir_free(&g);
  params_free(&pt);
  return rc == 0 ? NAO_EXIT_OK : lowering_failed(u, err);
}

// NULL: not in this build (the statistics, the IR and net.cu come with the
// lowering; the driver says so and exits 70).
static const struct {
  const char *name;
  NaocView fn;
  const char *help;
} views[] = {
    {"seq", view_seq, "the token sequence of both cells (the reference's fixed_arc)"},
    {"dot", view_dot, "a Graphviz drawing of both cells"},
    {"nao", view_nao, "the network as canonical .nao text"},
    {"stats", view_stats, "parameters, multiply-accumulates, activation bytes (JSON)"},
    {"ir", view_ir, "the training IR"},
};
enum { N_VIEWS = sizeof views / sizeof views[0] };
// The default output, net.cu: kernels and plan (compiler/emit_cuda.h). The
// source name goes into its header as given (never an absolute path).
static int view_cu_impl(NaoUnit *u, StrBuf *out) {
  char err[512];
  if (emit_net_cu(&u->spec, u->src.name, NULL, out, err, sizeof err) != 0)
    return lowering_failed(u, err);
  return NAO_EXIT_OK;
}
static const NaocView view_cu = view_cu_impl;

// ---------------------------------------------------------------- options

typedef struct {
  const char *file;
  const char *output;
  int check;
  int view;          // index into views, -1: none
  const char *seq;   // --from-seq
  const char *opt[SET_COUNT];      // --channels ... for --from-seq
  const char *opt_flag[SET_COUNT]; // the option's spelling, for messages
  const char *name;
  int trainer;       // --trainer: -o names the trainer program (naoc_trainer.h)
} NaocArgs;

static void usage(FILE *f) {
  fprintf(f,
          "usage: naoc FILE [-o OUT]           compile FILE to CUDA C (net.cu)\n"
          "       naoc --check FILE            check FILE: diagnostics only\n"
          "       naoc FILE --trainer -o OUT   build the trainer OUT (and OUT.cu) with the network built in\n"
          "       naoc --emit VIEW FILE [-o OUT]\n"
          "                                    print a view of FILE\n"
          "       naoc --from-seq \"SEQ\" [--dataset D] [--channels F] [--layers N] [--nodes B]\n"
          "                  [--aux W] [--drop-path P] [--dropout P] [--name NAME] [-o OUT]\n"
          "                                    write the .nao program of a token sequence\n"
          "       naoc --help | --version\n"
          "\n"
          "views (--emit):\n");
  for (int i = 0; i < N_VIEWS; i++) fprintf(f, "  %-6s %s\n", views[i].name, views[i].help);
  fprintf(f,
          "\n"
          "options:\n"
          "  -o, --output OUT   write to OUT instead of standard output ('-': standard output)\n"
          "  --from-seq SEQ     8B integers, x_in x_op y_in y_op per node, normal cell first\n"
          "  --dataset D        cifar10 (default), imagenet or fashion-mnist\n"
          "  --channels F       channels of the first stage (default 36)\n"
          "  --layers N         normal cells per stage (default 6)\n"
          "  --nodes B          nodes per cell; must match SEQ (default: from SEQ)\n"
          "  --aux W            auxiliary loss weight, 0: no auxiliary head (default 0.4)\n"
          "  --drop-path P      drop-path keep probability, 1: off (default 0.8)\n"
          "  --dropout P        dropout keep probability, 1: off (default 0.6)\n"
          "  --name NAME        the network's name\n"
          "FILE may be '-' for standard input. Exit status: 0 ok, 1 bad input, 2 bad usage,\n"
          "70 internal error. The language: docs/language.md.\n");
}

static _Noreturn void bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void bad_usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "naoc: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (see naoc --help)\n");
  va_end(ap);
  exit(NAO_EXIT_USAGE);
}

// "--opt VALUE" or "--opt=VALUE": returns the value and advances *i, or NULL
// when argv[*i] is not this option.
static const char *opt_value(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, name, n) != 0) return NULL;
  if (a[n] == '=') return a + n + 1;
  if (a[n] != '\0') return NULL;
  if (*i + 1 >= argc) bad_usage("%s needs a value", name);
  return argv[++*i];
}

static const struct {
  const char *flag;
  NaoSettingId id;
} seq_opts[] = {
    {"--dataset", SET_DATASET}, {"--channels", SET_CHANNELS}, {"--layers", SET_LAYERS},
    {"--nodes", SET_NODES},     {"--aux", SET_AUX_WEIGHT},    {"--drop-path", SET_DROP_PATH_KEEP},
    {"--dropout", SET_DROPOUT_KEEP},
};

static int parse_one(int argc, char **argv, int *i, NaocArgs *a) {
  const char *v;
  const char *arg = argv[*i];
  if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
    usage(stdout);
    exit(NAO_EXIT_OK);
  }
  if (!strcmp(arg, "--version")) {
    printf("naoc " NAOC_VERSION "\n");
    exit(NAO_EXIT_OK);
  }
  if (!strcmp(arg, "--check")) return a->check = 1;
  if (!strcmp(arg, "--trainer")) return a->trainer = 1;
  if ((v = opt_value(argc, argv, i, "-o")) || (v = opt_value(argc, argv, i, "--output"))) {
    if (a->output) bad_usage("%s given twice", "-o");
    a->output = v;
    return 1;
  }
  if ((v = opt_value(argc, argv, i, "--emit"))) {
    if (a->view >= 0) bad_usage("%s given twice", "--emit");
    for (int k = 0; k < N_VIEWS; k++)
      if (!strcmp(v, views[k].name)) a->view = k;
    if (a->view < 0) bad_usage("unknown view '%s' for --emit (seq, dot, nao, stats, ir)", v);
    return 1;
  }
  if ((v = opt_value(argc, argv, i, "--from-seq"))) {
    if (a->seq) bad_usage("%s given twice", "--from-seq");
    a->seq = v;
    return 1;
  }
  if ((v = opt_value(argc, argv, i, "--name"))) return a->name = v, 1;
  for (size_t k = 0; k < sizeof seq_opts / sizeof seq_opts[0]; k++) {
    if ((v = opt_value(argc, argv, i, seq_opts[k].flag))) {
      if (a->opt[seq_opts[k].id]) bad_usage("%s given twice", seq_opts[k].flag);
      a->opt[seq_opts[k].id] = v;
      a->opt_flag[seq_opts[k].id] = seq_opts[k].flag;
      return 1;
    }
  }
  return 0;
}

static void parse_args(int argc, char **argv, NaocArgs *a) {
  memset(a, 0, sizeof *a);
  a->view = -1;
  for (int i = 1; i < argc; i++) {
    if (parse_one(argc, argv, &i, a)) continue;
    const char *arg = argv[i];
    if (arg[0] == '-' && arg[1] != '\0') bad_usage("unknown option '%s'", arg);
    if (a->file) bad_usage("one input file at a time; '%s' is a second one", arg);
    a->file = arg;
  }
  if (a->seq) {
    if (a->file) bad_usage("--from-seq takes no input file ('%s')", a->file);
    if (a->check || a->view >= 0) bad_usage("%s", "--from-seq cannot be combined with --check or --emit");
    return;
  }
  for (int k = 0; k < SET_COUNT; k++)
    if (a->opt[k]) bad_usage("%s goes with --from-seq", a->opt_flag[k]);
  if (a->name) bad_usage("%s goes with --from-seq", "--name");
  if (!a->file) bad_usage("%s", "no input file");
  if (a->check && a->view >= 0) bad_usage("%s", "--check and --emit exclude each other");
  if (a->check && a->output) bad_usage("%s", "--check writes no output; drop -o");
  if (a->trainer && (a->check || a->view >= 0 || !a->output || !strcmp(a->output, "-")))
    bad_usage("%s", "--trainer builds the program -o names (and OUT.cu): FILE --trainer -o OUT");
}

// ---------------------------------------------------------------- output

// Writes the whole text to `path` ('-' or NULL: standard output). Returns 0,
// or 1 after saying what failed.
static int write_output(const char *path, const StrBuf *text) {
  int to_stdout = !path || !strcmp(path, "-");
  FILE *f = to_stdout ? stdout : fopen(path, "wb");
  if (!f) {
    fprintf(stderr, "naoc: cannot open '%s' for writing: %s\n", path, strerror(errno));
    return NAO_EXIT_INPUT;
  }
  size_t n = text->len ? fwrite(text->data, 1, text->len, f) : 0;
  int err = n != text->len || fflush(f) != 0;
  int saved = errno;
  if (!to_stdout && fclose(f) != 0) err = 1, saved = errno;
  if (err) {
    fprintf(stderr, "naoc: cannot write '%s': %s\n", to_stdout ? "standard output" : path, strerror(saved));
    return NAO_EXIT_INPUT;
  }
  return NAO_EXIT_OK;
}

static int unavailable(const char *what) {
  fprintf(stderr, "naoc: %s is not available in this build\n", what);
  return NAO_EXIT_INTERNAL;
}

// ---------------------------------------------------------------- --from-seq

// Applies the --from-seq options with the language's own range checks; the
// value of --nodes (0 when not given) goes to *nodes.
static void seq_options(const NaocArgs *a, NetSpec *ns, int *nodes) {
  char err[320];
  for (int id = 0; id < SET_COUNT; id++) {
    const char *v = a->opt[id];
    if (!v) continue;
    const NaoSettingInfo *si = nao_setting_info((NaoSettingId)id);
    int rc = 0;
    switch (id) {
      case SET_DATASET: {
        DatasetPreset d;
        rc = nao_setting_dataset(v, &d, err, sizeof err);
        if (rc == 0) netspec_apply_dataset(ns, d);
        break;
      }
      case SET_CHANNELS: rc = nao_setting_int(si, v, &ns->channels, err, sizeof err); break;
      case SET_LAYERS: rc = nao_setting_int(si, v, &ns->layers, err, sizeof err); break;
      case SET_NODES: rc = nao_setting_int(si, v, nodes, err, sizeof err); break;
      case SET_AUX_WEIGHT: rc = nao_setting_real(si, v, &ns->aux_weight, err, sizeof err); break;
      case SET_DROP_PATH_KEEP: rc = nao_setting_real(si, v, &ns->drop_path_keep, err, sizeof err); break;
      case SET_DROPOUT_KEEP: rc = nao_setting_real(si, v, &ns->dropout_keep, err, sizeof err); break;
      default: break;
    }
    if (rc) {
      fprintf(stderr, "naoc: %s: %s\n", a->opt_flag[id], err);
      exit(NAO_EXIT_USAGE);
    }
  }
}

static int from_seq(const NaocArgs *a) {
  NetSpec ns;
  int nodes = 0;
  netspec_init(&ns);
  seq_options(a, &ns, &nodes);
  char err[512];
  if (netspec_parse_arch(&ns, a->seq, err, sizeof err) != 0) {
    fprintf(stderr, "naoc: --from-seq: %s\n", err);
    return NAO_EXIT_INPUT;
  }
  if (nodes && nodes != ns.nodes) {
    fprintf(stderr, "naoc: --from-seq: the sequence has %d node%s per cell (%d tokens), but --nodes is %s\n",
            ns.nodes, ns.nodes == 1 ? "" : "s", 8 * ns.nodes, a->opt[SET_NODES]);
    return NAO_EXIT_INPUT;
  }
  if (a->name) {
    if (strlen(a->name) >= NAO_NAME_MAX) {
      fprintf(stderr, "naoc: --name: at most %d characters\n", NAO_NAME_MAX - 1);
      return NAO_EXIT_USAGE;
    }
    strcpy(ns.name, a->name);
  }
  NetLayout *layout = xmalloc(sizeof *layout);
  LayoutError le = netspec_layout(&ns, layout, err, sizeof err);
  free(layout);
  if (le != LAYOUT_OK) {
    fprintf(stderr, "naoc: --from-seq: %s\n", err);
    return NAO_EXIT_INPUT;
  }
  StrBuf text = {0};
  write_nao(&ns, "written by naoc --from-seq", &text);
  // The text must check back to the same network: anything else is a bug here.
  NetSpec back;
  StrBuf diags = {0};
  if (nao_frontend_text_sink("<from-seq>", text.data, text.len, &back, (DiagSink){NULL, &diags, 0}) != 0)
    nao_internal("the .nao text written for --from-seq does not check:\n%s", diags.data);
  sb_free(&diags);
  int rc = write_output(a->output, &text);
  sb_free(&text);
  return rc;
}

// ---------------------------------------------------------------- main

static int read_unit(const char *file, NaoUnit *u) {
  DiagSink sink = {stderr, NULL, 0};
  if (strcmp(file, "-") != 0) return nao_unit_init_file(u, file, sink);
  StrBuf in = {0};
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) sb_appendn(&in, buf, n);
  if (ferror(stdin)) {
    fprintf(stderr, "naoc: cannot read standard input: %s\n", strerror(errno));
    sb_free(&in);
    nao_unit_init(u, "<stdin>", "", 0, sink);
    return NAO_EXIT_INPUT;
  }
  int rc = nao_unit_init(u, "<stdin>", in.data ? in.data : "", in.len, sink);
  sb_free(&in);
  return rc;
}

int main(int argc, char **argv) {
  NaocArgs a;
  parse_args(argc, argv, &a);
  if (a.seq) return from_seq(&a);
  NaoUnit u;
  int rc = read_unit(a.file, &u);
  if (rc == NAO_EXIT_OK) rc = nao_unit_check(&u);
  if (rc == NAO_EXIT_OK && !a.check) {
    NaocView fn = a.view >= 0 ? views[a.view].fn : view_cu;
    if (!fn) {
      char what[64];
      if (a.view >= 0) snprintf(what, sizeof what, "--emit %s", views[a.view].name);
      else snprintf(what, sizeof what, "compiling to net.cu");
      rc = unavailable(what);
    } else {
      StrBuf out = {0};
      rc = fn(&u, &out);
      if (rc == NAO_EXIT_OK)
        rc = a.trainer ? naoc_build_trainer(a.file, a.output, &out) : write_output(a.output, &out);
      sb_free(&out);
    }
  }
  nao_unit_free(&u);
  return rc;
}
