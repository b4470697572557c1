// tests/unit/test_frontend.c — the front end's public API on real input.
//
// What it shows: a file checks into the NetSpec it describes (every setting,
// both cells); settings not written take netspec_init's defaults and the
// preset's; NetSpecLocs point at the text of each setting, node, op and input;
// diagnostics go to a StrBuf with the error limit the caller asks for; the
// text needs no final NUL (the buffer is exactly len bytes, so ASan sees any
// read past it); two compilations can be interleaved, phase by phase and in
// two threads at once, with the same results as one at a time.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/frontend.h"
#include "compiler/ops.h"
#include "tests/unit/check.h"
#include "tests/unit/spec_eq.h"

static const char *naonet_b =
    "// NAONet-B\n"
    "network naonet_b {\n"
    "  dataset cifar10;\n"
    "  channels 36;\n"
    "  layers 6;\n"
    "  aux_weight 0.4;\n"
    "  drop_path_keep 0.8;\n"
    "  dropout_keep 0.6;\n"
    "}\n"
    "cell normal {\n"
    "  node 2 = sep5x5(0) + avg3x3(0);\n"
    "  node 3 = sep5x5(0) + avg3x3(2);\n"
    "  node 4 = max3x3(1) + avg3x3(0);\n"
    "  node 5 = sep3x3(4) + max3x3(1);\n"
    "  node 6 = sep5x5(2) + max3x3(0);\n"
    "}\n"
    "cell reduction = \"1 1 1 0 2 1 2 4 1 0 2 3 3 1 2 2 0 2 0 2\";\n";

// The text of a place, for comparing locations with what they should cover.
static const char *loc_text(const NaoUnit *u, NaoLoc loc, char *buf, size_t cap) {
  size_t n = loc.end - loc.begin;
  if (n >= cap) n = cap - 1;
  memcpy(buf, u->src.text + loc.begin, n);
  buf[n] = '\0';
  return buf;
}

// Checks `text` (copied into an exactly-sized buffer) and returns the exit code.
static int check_text(const char *text, NetSpec *ns, StrBuf *diags) {
  size_t len = strlen(text);
  char *exact = xmalloc(len ? len : 1);
  memcpy(exact, text, len);
  int rc = nao_frontend_text_sink("t.nao", exact, len, ns, (DiagSink){NULL, diags, 0});
  free(exact);
  return rc;
}

static void test_naonet_b(void) {
  NetSpec ns;
  StrBuf d = {0};
  int rc = check_text(naonet_b, &ns, &d);
  CHECK(rc == NAO_EXIT_OK, "rc %d, diagnostics:\n%s", rc, d.data ? d.data : "");
  char arch[512];
  netspec_format_arch(&ns, arch, sizeof arch);
  CHECK(!strcmp(arch, "0 1 0 2 0 1 2 2 1 3 0 2 4 0 1 3 2 1 0 3 1 1 1 0 2 1 2 4 1 0 2 3 3 1 2 2 0 2 0 2"),
        "arch %s", arch);
  CHECK(!strcmp(ns.name, "naonet_b"), "name %s", ns.name);
  CHECK(ns.dataset == DATASET_CIFAR10 && ns.in_channels == 3 && ns.in_height == 32 && ns.in_width == 32,
        "input %d %dx%dx%d", ns.dataset, ns.in_channels, ns.in_height, ns.in_width);
  CHECK(ns.classes == 10 && ns.stem == STEM_CIFAR, "classes %d stem %d", ns.classes, ns.stem);
  CHECK(ns.channels == 36 && ns.layers == 6 && ns.nodes == 5, "F %d N %d B %d", ns.channels, ns.layers, ns.nodes);
  CHECK(ns.aux_weight == 0.4 && ns.drop_path_keep == 0.8 && ns.dropout_keep == 0.6, "reals %g %g %g",
        ns.aux_weight, ns.drop_path_keep, ns.dropout_keep);
  sb_free(&d);
}

static void test_defaults_and_presets(void) {
  NetSpec ns, def;
  netspec_init(&def);
  StrBuf d = {0};
  int rc = check_text("network { }\ncell normal = \"0 0 1 1\";\ncell reduction = \"0 4 1 4\";", &ns, &d);
  CHECK(rc == 0, "%s", d.data ? d.data : "");
  CHECK(ns.channels == def.channels && ns.layers == def.layers && ns.aux_weight == def.aux_weight &&
            ns.drop_path_keep == def.drop_path_keep && ns.dropout_keep == def.dropout_keep &&
            ns.dataset == def.dataset && ns.name[0] == '\0' && ns.nodes == 1,
        "defaults differ from netspec_init's");
  rc = check_text("network { dataset imagenet; }\ncell normal = \"0 0 1 1\";\ncell reduction = \"0 4 1 4\";", &ns, &d);
  CHECK(rc == 0 && ns.dataset == DATASET_IMAGENET && ns.in_height == 224 && ns.classes == 1000 &&
            ns.stem == STEM_IMAGENET && ns.channels == def.channels,
        "imagenet preset: rc %d h %d classes %d", rc, ns.in_height, ns.classes);
  rc = check_text("network { input 1x28x28; classes 5; aux_weight 0; }\ncell normal = \"0 0 1 1\";\n"
                  "cell reduction = \"0 4 1 4\";", &ns, &d);
  CHECK(rc == 0 && ns.dataset == DATASET_NONE && ns.in_channels == 1 && ns.in_height == 28 && ns.classes == 5 &&
            ns.stem == STEM_CIFAR && ns.aux_weight == 0,
        "explicit input: rc %d dataset %d", rc, ns.dataset);
  sb_free(&d);
}

static void test_locations(void) {
  NaoUnit u;
  nao_unit_init(&u, "t.nao", naonet_b, strlen(naonet_b), (DiagSink){0});
  CHECK(nao_unit_check(&u) == 0, "check failed");
  char buf[128];
  CHECK(u.locs.given == (1u << SET_DATASET | 1u << SET_CHANNELS | 1u << SET_LAYERS | 1u << SET_AUX_WEIGHT |
                         1u << SET_DROP_PATH_KEEP | 1u << SET_DROPOUT_KEEP),
        "given 0x%x", u.locs.given);
  CHECK(!strcmp(loc_text(&u, u.locs.setting[SET_CHANNELS], buf, sizeof buf), "channels 36;"), "%s", buf);
  CHECK(!strcmp(loc_text(&u, u.locs.value[SET_AUX_WEIGHT], buf, sizeof buf), "0.4"), "%s", buf);
  CHECK(u.locs.setting[SET_NODES].begin == 0 && u.locs.setting[SET_NODES].end == 0, "nodes not written");
  CHECK(!strcmp(loc_text(&u, u.locs.network, buf, sizeof buf), "network naonet_b"), "%s", buf);
  CHECK(!strcmp(loc_text(&u, u.locs.cell[0].node[3], buf, sizeof buf), "node 5 = sep3x3(4) + max3x3(1);"), "%s", buf);
  CHECK(!strcmp(loc_text(&u, u.locs.cell[0].op[3][0], buf, sizeof buf), "sep3x3"), "%s", buf);
  CHECK(!strcmp(loc_text(&u, u.locs.cell[0].input[3][1], buf, sizeof buf), "1"), "%s", buf);
  // In a token string every token has its own place: node 3 of the reduction
  // cell is tokens 5-8, "2 1 2 4".
  CHECK(!strcmp(loc_text(&u, u.locs.cell[1].node[1], buf, sizeof buf), "2 1 2 4"), "%s", buf);
  CHECK(!strcmp(loc_text(&u, u.locs.cell[1].op[1][1], buf, sizeof buf), "4"), "%s", buf);
  CHECK(!strcmp(loc_text(&u, u.locs.cell[1].cell, buf, sizeof buf), "cell reduction"), "%s", buf);
  nao_unit_free(&u);
}

static void test_diagnostics_and_limit(void) {
  // 30 unknown settings: the limit of 5 shows 5 and then stops.
  StrBuf text = {0}, d = {0};
  sb_append(&text, "network t {\n");
  for (int i = 0; i < 30; i++) sb_printf(&text, "  bogus%d 1;\n", i);
  sb_append(&text, "}\ncell normal = \"0 0 1 1\";\ncell reduction = \"0 0 1 1\";\n");
  NetSpec ns;
  int rc = nao_frontend_text_sink("lim.nao", text.data, text.len, &ns, (DiagSink){NULL, &d, 5});
  CHECK(rc == NAO_EXIT_INPUT, "rc %d", rc);
  int errors = 0;
  for (const char *p = d.data; (p = strstr(p, ": error: ")); p++) errors++;
  CHECK(errors == 6, "%d error lines (5 + 'too many errors')", errors);
  CHECK(strstr(d.data, "lim.nao:7:3: error: too many errors, stopping after 5\n") != NULL, "%s", d.data);
  CHECK(!strncmp(d.data, "lim.nao:2:3: error: unknown setting 'bogus0'", 44), "%.80s", d.data);
  sb_free(&d);
  sb_free(&text);
}

static void test_file_api(void) {
  NetSpec ns;
  FILE *devnull = fopen("/dev/null", "w");
  CHECK(devnull != NULL, "fopen /dev/null");
  int rc = nao_frontend_file("/nonexistent/dir/x.nao", &ns, devnull);
  CHECK(rc == NAO_EXIT_INPUT, "missing file: rc %d", rc);
  rc = nao_frontend_file("generated/naonet-a-imagenet.nao", &ns, devnull);
  CHECK(rc == NAO_EXIT_OK && ns.channels == 42 && ns.layers == 4 && ns.dataset == DATASET_IMAGENET &&
            ns.cell[0].node[0].x_op == NAO_OP_CONV3X3,
        "generated/naonet-a-imagenet.nao: rc %d (run from the repository root)", rc);
  if (devnull) fclose(devnull);
}

// ---------------------------------------------------------------- two at once

static const char *other =
    "network other { dataset fashion-mnist; channels 8; layers 1; aux_weight 0; }\n"
    "cell normal { node 2 = conv3x3(0) + max2x2(1); node 3 = avg2x2(2) + identity_l(0); }\n"
    "cell reduction { node 2 = conv1x1(0) + max5x5(1); node 3 = avg5x5(2) + conv1x7_7x1(2); }\n";

static void test_interleaved(void) {
  NetSpec ref_a, ref_b;
  StrBuf d = {0};
  CHECK(check_text(naonet_b, &ref_a, &d) == 0 && check_text(other, &ref_b, &d) == 0, "%s", d.data ? d.data : "");
  // Phase by phase: parse A, parse B, check B, check A.
  NaoUnit a, b;
  nao_unit_init(&a, "a.nao", naonet_b, strlen(naonet_b), (DiagSink){0});
  nao_unit_init(&b, "b.nao", other, strlen(other), (DiagSink){0});
  CHECK(nao_unit_parse(&a) == 0 && nao_unit_parse(&b) == 0, "parse");
  CHECK(nao_unit_check(&b) == 0 && nao_unit_check(&a) == 0, "check");
  char why[160] = "";
  CHECK(spec_equal(&a.spec, &ref_a, why, sizeof why) && spec_equal(&b.spec, &ref_b, why, sizeof why),
        "interleaved results differ from one-at-a-time results: %s", why);
  nao_unit_free(&a);
  nao_unit_free(&b);
  sb_free(&d);
}

typedef struct {
  const char *text;
  const NetSpec *want;
  int bad;
} Worker;

static void *worker(void *arg) {
  Worker *w = arg;
  for (int i = 0; i < 300; i++) {
    NetSpec ns;
    StrBuf d = {0};
    char why[160];
    if (check_text(w->text, &ns, &d) != 0 || !spec_equal(&ns, w->want, why, sizeof why)) w->bad++;
    // A bad input in between, so the error paths run concurrently too.
    if (check_text("network { channels 0; }", &ns, &d) != NAO_EXIT_INPUT) w->bad++;
    sb_free(&d);
  }
  return NULL;
}

static void test_threads(void) {
  NetSpec ref_a, ref_b;
  StrBuf d = {0};
  check_text(naonet_b, &ref_a, &d);
  check_text(other, &ref_b, &d);
  sb_free(&d);
  Worker w[2] = {{naonet_b, &ref_a, 0}, {other, &ref_b, 0}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, worker, &w[i]) == 0, "pthread_create");
  for (int i = 0; i < 2; i++) CHECK(pthread_join(t[i], NULL) == 0, "pthread_join");
  CHECK(w[0].bad == 0 && w[1].bad == 0, "threads: %d and %d wrong results", w[0].bad, w[1].bad);
}

int main(void) {
  test_naonet_b();
  test_defaults_and_presets();
  test_locations();
  test_diagnostics_and_limit();
  test_file_api();
  test_interleaved();
  test_threads();
  return check_done("test_frontend");
}
