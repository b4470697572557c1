// tests/unit/test_eval_ws.c — the `ws` evaluator (search/eval_ws*.c) on a tiny
// setting (synthetic 28x28 images, F = 4, one normal cell per stage, batch 8):
//  - sharing: a training step on architecture A changes every weight A's
//    graph uses and not one bit of any other weight or momentum; a weight A
//    and B share sits at one place, so B's step moves it again, and B's step
//    leaves A's private weights alone;
//  - scoring: deterministic, independent of order, every architecture of a
//    round on the same held-out images (another round draws others), and it
//    changes nothing in the supernet;
//  - save / load: a state saved after round 0 and loaded into a fresh
//    evaluator continues bit for bit as the original; a file of another
//    supernet is refused and changes nothing.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler/util.h"
#include "search/eval_ws.h"
#include "tests/unit/check.h"

static char tmpdir[] = "/tmp/naoc-ws-XXXXXX";
static SearchSpace sp;
static NetSpec backbone;

static EvalOptions options(int channels) {
  EvalOptions o;
  memset(&o, 0, sizeof o);
  o.space = &sp;
  backbone.channels = channels;
  o.backbone = &backbone;
  o.data = "synthetic";
  o.ws_epochs = 1, o.ws_batch = 8;
  o.ws_lr = 0.05, o.ws_lr_min = 0.001, o.ws_momentum = 0.9, o.ws_weight_decay = 3e-4, o.ws_grad_clip = 5;
  o.ws_drop_path_keep = 0.9;
  o.ws_eval_images = 16, o.ws_heldout = 24, o.ws_train_images = 16;  // 2 steps an epoch
  o.rounds = 2, o.threads = 1, o.backend = "cpu", o.seed = 7;
  return o;
}

static void make(Evaluator *ev, const EvalOptions *o) {
  char err[600];
  int rc = eval_ws_create(ev, o, err, sizeof err);
  CHECK(rc == 0, "eval_ws_create: %s", err);
  if (rc) exit(check_done("test_eval_ws"));
}

static EvalItem item(const char *text, int *tok) {
  char err[300];
  int rc = space_parse(&sp, text, tok, err, sizeof err);
  CHECK(rc == 0, "arch '%s': %s", text, err);
  return (EvalItem){tok, text, NULL};
}

// Which table entries arch's training graph writes.
static unsigned char *written(Evaluator *ev, const EvalItem *it) {
  Ws *w = ev->impl;
  NetSpec ns;
  NetBuild nb;
  Backend *be;
  char err[600];
  unsigned char *out = xcalloc((size_t)w->table.n + 1, 1);
  if (ws_arch_spec(w, it->tokens, &ns, err, sizeof err) != 0 || ws_build(w, &ns, 1, &nb, &be, err, sizeof err) != 0) {
    CHECK(0, "build: %s", err);
    return out;
  }
  memcpy(out, nb.grad_written, (size_t)w->table.n);
  for (int i = 0; i < w->table.n; i++)  // one layout: the same name at the same place
    CHECK(!strcmp(nb.params.items[i].name, w->table.items[i].name) &&
              nb.params.items[i].offset == w->table.items[i].offset,
          "entry %d: %s at %zu, the supernet's %s at %zu", i, nb.params.items[i].name, nb.params.items[i].offset,
          w->table.items[i].name, w->table.items[i].offset);
  ws_unbuild(&nb, be);
  return out;
}

static int tensor_changed(const Ws *w, const float *before, int i) {
  const ParamInfo *p = &w->table.items[i];
  return memcmp(before + p->offset, w->state.params + p->offset, p->numel * sizeof(float)) != 0;
}

static float *snapshot(const Ws *w) {
  float *s = xmalloc(w->table.n_trainable * sizeof(float));
  memcpy(s, w->state.params, w->table.n_trainable * sizeof(float));
  return s;
}

// A (normal node 0: sep 3x3 on input 0 in both branches) and B share the
// weights of that node; B's other nodes differ from A's.
static const char *A = "0 0 0 0 1 2 0 3 2 4 1 2 3 3 0 4 4 2 2 3  0 1 1 0 2 4 0 3 3 2 1 4 4 3 0 2 5 4 1 3";
static const char *B = "0 0 0 0 0 1 1 1 1 1 2 0 2 1 3 1 3 0 4 0  1 0 0 1 2 1 2 0 0 1 3 1 2 0 4 1 1 1 3 0";
static const char *C = "1 2 1 3 2 4 0 2 3 3 1 4 4 2 0 3 5 4 2 2  0 2 1 4 2 3 0 4 1 2 3 3 4 4 2 2 0 3 1 4";

static void check_sharing(void) {
  Evaluator ev;
  EvalOptions o = options(4);
  make(&ev, &o);
  Ws *w = ev.impl;
  int ta[SPACE_MAX_LEN], tb[SPACE_MAX_LEN];
  EvalItem a = item(A, ta), b = item(B, tb);
  unsigned char *wa = written(&ev, &a), *wb = written(&ev, &b);
  char err[600];
  float *s0 = snapshot(w);
  CHECK(ws_begin_round(&ev, 0, &a, 1, err, sizeof err) == 0, "round 0 on A: %s", err);
  CHECK(w->step == 2, "%lld steps, want 2", w->step);
  int used = 0, shared = -1, a_only = -1, moved = 0;
  for (int i = 0; i < w->table.n; i++) {
    const ParamInfo *p = &w->table.items[i];
    if (!p->trainable) continue;
    int changed = tensor_changed(w, s0, i);
    if (wa[i]) used++, moved += changed;
    else CHECK(!changed && !w->state.sgd.has_buf[i], "'%s' is not in A's graph but changed (%d) or has momentum (%d)",
               p->name, changed, w->state.sgd.has_buf[i]);
    if (wa[i]) CHECK(w->state.sgd.has_buf[i], "'%s' is in A's graph but has no momentum", p->name);
    if (wa[i] && wb[i] && strstr(p->name, "cells.0.") && strstr(p->name, "W1_depthwise")) shared = i;
    if (wa[i] && !wb[i] && strstr(p->name, "W1_depthwise")) a_only = i;
  }
  CHECK(used > 10 && moved == used, "A's step moved %d of the %d weights its graph uses", moved, used);
  CHECK(shared >= 0 && a_only >= 0, "no shared (%d) or A-only (%d) separable-conv weight found", shared, a_only);
  if (shared < 0 || a_only < 0) goto out;
  // B's step: moves the shared weight again, leaves A's own weights as they are.
  float *s1 = snapshot(w);
  w->epochs_done = 1;  // round 1 trains one more epoch, on B only
  CHECK(ws_begin_round(&ev, 1, &b, 1, err, sizeof err) == 0, "round 1 on B: %s", err);
  CHECK(tensor_changed(w, s1, shared), "B's step left the shared '%s' unchanged", w->table.items[shared].name);
  CHECK(!tensor_changed(w, s1, a_only), "B's step changed A's own '%s'", w->table.items[a_only].name);
  free(s1);
out:
  free(wa), free(wb), free(s0);
  eval_destroy(&ev);
}

static void check_scoring(void) {
  Evaluator ev;
  EvalOptions o = options(4);
  make(&ev, &o);
  Ws *w = ev.impl;
  int t[3][SPACE_MAX_LEN];
  EvalItem it[3] = {item(A, t[0]), item(B, t[1]), item(C, t[2])}, rev[3] = {it[2], it[1], it[0]};
  char err[600];
  double s1[3], s2[3], s3[3];
  CHECK(ws_begin_round(&ev, 0, it, 3, err, sizeof err) == 0, "round 0: %s", err);
  float *p0 = snapshot(w), *b0 = xmalloc(w->table.n_buffer * sizeof(float));
  memcpy(b0, w->state.buffers, w->table.n_buffer * sizeof(float));
  CHECK(ev.score(&ev, it, 3, s1, NULL, NULL, err, sizeof err) == 0, "score: %s", err);
  size_t img = (size_t)w->n_eval * 28 * 28;
  float *images = xmalloc(img * sizeof(float));
  memcpy(images, w->eval_images, img * sizeof(float));
  CHECK(ev.score(&ev, rev, 3, s2, NULL, NULL, err, sizeof err) == 0, "score reversed: %s", err);
  CHECK(ev.score(&ev, it, 3, s3, NULL, NULL, err, sizeof err) == 0, "score again: %s", err);
  for (int i = 0; i < 3; i++) {
    CHECK(s1[i] == s3[i] && s1[i] == s2[2 - i], "arch %d: %g, then %g (reversed order), then %g", i, s1[i], s2[2 - i],
          s3[i]);
    double k = s1[i] * w->n_eval;
    CHECK(s1[i] >= 0 && s1[i] <= 1 && fabs(k - round(k)) < 1e-9, "arch %d: score %g is not hits / %d", i, s1[i],
          w->n_eval);
  }
  CHECK(!memcmp(images, w->eval_images, img * sizeof(float)), "the scoring images changed within a round");
  CHECK(!memcmp(p0, w->state.params, w->table.n_trainable * sizeof(float)), "scoring changed the supernet");
  CHECK(!memcmp(b0, w->state.buffers, w->table.n_buffer * sizeof(float)), "scoring changed BN running statistics");
  CHECK(ws_begin_round(&ev, 1, it, 3, err, sizeof err) == 0, "round 1: %s", err);
  CHECK(ev.score(&ev, it, 1, s2, NULL, NULL, err, sizeof err) == 0, "score round 1: %s", err);
  CHECK(memcmp(images, w->eval_images, img * sizeof(float)) != 0, "round 1 scores on round 0's images");
  free(images), free(p0), free(b0);
  eval_destroy(&ev);
}

static void check_save_load(void) {
  Evaluator e1, e2, e3;
  EvalOptions o = options(4);
  o.state_dir = tmpdir;
  make(&e1, &o);
  Ws *w1 = e1.impl;
  int t[3][SPACE_MAX_LEN];
  EvalItem it[3] = {item(A, t[0]), item(B, t[1]), item(C, t[2])};
  char err[600], path[700], r0[700];
  CHECK(ws_begin_round(&e1, 0, it, 3, err, sizeof err) == 0, "round 0: %s", err);
  snprintf(path, sizeof path, "%s/%s", tmpdir, WS_FILE);
  CHECK(access(path, F_OK) == 0, "no %s after an epoch", path);
  snprintf(r0, sizeof r0, "%s/r0", tmpdir);
  CHECK(mkdir(r0, 0755) == 0 && e1.save(&e1, r0, err, sizeof err) == 0, "save in %s: %s", r0, err);
  float *p0 = snapshot(w1);
  CHECK(ws_begin_round(&e1, 1, it, 3, err, sizeof err) == 0, "round 1: %s", err);
  double s1[3], s2[3];
  CHECK(e1.score(&e1, it, 3, s1, NULL, NULL, err, sizeof err) == 0, "score: %s", err);
  // A fresh evaluator loads round 0's end and goes on as the first did.
  make(&e2, &o);
  Ws *w2 = e2.impl;
  w2->state_dir[0] = '\0';
  CHECK(e2.load(&e2, r0, err, sizeof err) == 0, "load: %s", err);
  CHECK(w2->step == 2 && w2->epochs_done == 1, "loaded step %lld, epochs %d (want 2, 1)", w2->step, w2->epochs_done);
  CHECK(!memcmp(w2->state.params, p0, w2->table.n_trainable * sizeof(float)), "loaded weights differ from the saved");
  CHECK(memcmp(w2->state.params, w1->state.params, w2->table.n_trainable * sizeof(float)) != 0,
        "round 1 changed nothing: the comparison below would prove nothing");
  CHECK(ws_begin_round(&e2, 1, it, 3, err, sizeof err) == 0, "resumed round 1: %s", err);
  CHECK(w2->step == w1->step, "resumed at step %lld, uninterrupted %lld", w2->step, w1->step);
  CHECK(!memcmp(w2->state.params, w1->state.params, w2->table.n_trainable * sizeof(float)), "resumed weights differ");
  CHECK(!memcmp(w2->state.sgd.momentum, w1->state.sgd.momentum, w2->table.n_trainable * sizeof(float)) &&
            !memcmp(w2->state.sgd.has_buf, w1->state.sgd.has_buf, (size_t)w2->table.n),
        "resumed momentum differs");
  CHECK(!memcmp(w2->state.buffers, w1->state.buffers, w2->table.n_buffer * sizeof(float)), "resumed BN buffers differ");
  CHECK(e2.score(&e2, it, 3, s2, NULL, NULL, err, sizeof err) == 0, "score resumed: %s", err);
  for (int i = 0; i < 3; i++) CHECK(s1[i] == s2[i], "arch %d: %g uninterrupted, %g resumed", i, s1[i], s2[i]);
  // Another supernet (F = 6) refuses the file and keeps its own state.
  EvalOptions o6 = options(6);
  make(&e3, &o6);
  Ws *w3 = e3.impl;
  float *q = snapshot(w3);
  CHECK(e3.load(&e3, tmpdir, err, sizeof err) == -1 && strstr(err, WS_FILE), "F=6 loaded F=4's file (%s)", err);
  CHECK(!memcmp(q, w3->state.params, w3->table.n_trainable * sizeof(float)) && w3->step == 0,
        "a refused load changed the state");
  snprintf(path, sizeof path, "%s/none", tmpdir);
  CHECK(e3.load(&e3, path, err, sizeof err) == 1, "a folder without a state should give 1");
  free(q), free(p0);
  eval_destroy(&e1), eval_destroy(&e2), eval_destroy(&e3);
}

int main(void) {
  char err[200];
  if (!mkdtemp(tmpdir) || space_init(&sp, "nao-small", err, sizeof err) != 0) {
    fprintf(stderr, "test_eval_ws: setup failed\n");
    return 1;
  }
  netspec_init(&backbone);
  netspec_apply_dataset(&backbone, DATASET_FASHION_MNIST);
  backbone.layers = 1;
  check_sharing();
  check_scoring();
  check_save_load();
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "test_eval_ws: could not remove %s\n", tmpdir);
  return check_done("test_eval_ws");
}
