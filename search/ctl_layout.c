// search/ctl_layout.c — the controller's settings, its parameter table
// (state_dict names, shapes, offsets in one flat array) and PyTorch's default
// initialisation of each tensor.
//
// Invariant: the table lists the tensors in the reference's state_dict order
// (encoder: embedding, rnn, mlp layers, regressor; decoder: rnn, embedding,
// attention input/output projections, out), contiguously, so "encoder.*" is a
// prefix of the array of n_encoder floats.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "compiler/util.h"
#include "search/ctl.h"

void ctl_config_default(CtlConfig *c, int vocab, int length) {
  memset(c, 0, sizeof *c);
  c->vocab = vocab;
  c->length = length;
  c->enc_len = length / 2;  // one (input, op) pair per encoder step
  c->emb = 48;
  c->hidden = 96;
  c->mlp_layers = 3;
  c->mlp_hidden = 200;
  c->mlp_dropout = 0.1;
  c->trade_off = 0.8;
  c->lr = 1e-3;
  c->l2 = 1e-4;
  c->grad_bound = 5.0;
  c->batch = 100;
  c->threads = 1;
}

int ctl_config_check(const CtlConfig *c, char *err, size_t errlen) {
#define BAD(...) return snprintf(err, errlen, __VA_ARGS__), -1
  if (c->vocab < 2 || c->vocab > CTL_MAX_VOCAB) BAD("vocabulary of %d tokens: 2 to %d", c->vocab, CTL_MAX_VOCAB);
  if (c->length < 1 || c->length > CTL_MAX_LEN) BAD("length %d: 1 to %d tokens", c->length, CTL_MAX_LEN);
  if (c->enc_len < 1 || c->length % c->enc_len)
    BAD("encoder length %d must divide the sequence length %d", c->enc_len, c->length);
  if (c->hidden < 1 || c->hidden > 4096) BAD("hidden size %d: 1 to 4096", c->hidden);
  if (c->emb < 1 || c->length / c->enc_len * c->emb != c->hidden)
    BAD("embedding size %d: (length / encoder length) * embedding (%d * %d) must equal the hidden size %d",
        c->emb, c->length / c->enc_len, c->emb, c->hidden);
  if (c->mlp_layers < 0 || c->mlp_layers > CTL_MAX_MLP) BAD("predictor layers %d: 0 to %d", c->mlp_layers, CTL_MAX_MLP);
  if (c->mlp_layers && (c->mlp_hidden < 1 || c->mlp_hidden > 65536)) BAD("predictor width %d: 1 to 65536", c->mlp_hidden);
  if (!(c->mlp_dropout >= 0 && c->mlp_dropout < 1)) BAD("predictor dropout %g: in [0, 1)", c->mlp_dropout);
  if (!(c->trade_off >= 0 && c->trade_off <= 1)) BAD("trade-off %g: in [0, 1]", c->trade_off);
  if (!(c->lr > 0 && c->lr < 1e3)) BAD("learning rate %g must be positive", c->lr);
  if (!(c->l2 >= 0 && c->l2 < 1e3)) BAD("weight decay %g must be >= 0", c->l2);
  if (!(c->grad_bound > 0)) BAD("gradient bound %g must be positive", c->grad_bound);
  if (c->batch < 1 || c->batch > 100000) BAD("batch %d: 1 to 100000", c->batch);
  if (c->threads < 1 || c->threads > 64) BAD("threads %d: 1 to 64", c->threads);
  return 0;
#undef BAD
}

static size_t add(CtlLayout *lay, const char *name, int rows, int cols, CtlInit init, int fan_in) {
  NAO_ASSERT(lay->n < CTL_MAX_PARAMS);
  CtlParam *p = &lay->p[lay->n++];
  snprintf(p->name, sizeof p->name, "%s", name);
  p->rows = rows, p->cols = cols, p->off = lay->total, p->init = init, p->fan_in = fan_in;
  lay->total += (size_t)rows * (cols ? cols : 1);
  return p->off;
}

void ctl_layout_build(CtlLayout *lay, const CtlConfig *c) {
  const int H = c->hidden, G = 4 * H, V = c->vocab, M = c->mlp_hidden;
  char name[CTL_NAME_MAX];
  memset(lay, 0, sizeof *lay);
  lay->enc_emb = add(lay, "encoder.embedding.weight", V, c->emb, CTL_INIT_NORMAL, 0);
  lay->enc_wih = add(lay, "encoder.rnn.weight_ih_l0", G, H, CTL_INIT_LSTM, H);
  lay->enc_whh = add(lay, "encoder.rnn.weight_hh_l0", G, H, CTL_INIT_LSTM, H);
  lay->enc_bih = add(lay, "encoder.rnn.bias_ih_l0", G, 0, CTL_INIT_LSTM, H);
  lay->enc_bhh = add(lay, "encoder.rnn.bias_hh_l0", G, 0, CTL_INIT_LSTM, H);
  int in = H;
  for (int l = 0; l < c->mlp_layers; l++) {
    snprintf(name, sizeof name, "encoder.mlp.layer_%d.0.weight", l);
    lay->mlp_w[l] = add(lay, name, M, in, CTL_INIT_LINEAR, in);
    snprintf(name, sizeof name, "encoder.mlp.layer_%d.0.bias", l);
    lay->mlp_b[l] = add(lay, name, M, 0, CTL_INIT_LINEAR, in);
    in = M;
  }
  lay->reg_w = add(lay, "encoder.regressor.weight", 1, in, CTL_INIT_LINEAR, in);
  lay->reg_b = add(lay, "encoder.regressor.bias", 1, 0, CTL_INIT_LINEAR, in);
  lay->n_encoder = lay->total;
  lay->dec_wih = add(lay, "decoder.rnn.weight_ih_l0", G, H, CTL_INIT_LSTM, H);
  lay->dec_whh = add(lay, "decoder.rnn.weight_hh_l0", G, H, CTL_INIT_LSTM, H);
  lay->dec_bih = add(lay, "decoder.rnn.bias_ih_l0", G, 0, CTL_INIT_LSTM, H);
  lay->dec_bhh = add(lay, "decoder.rnn.bias_hh_l0", G, 0, CTL_INIT_LSTM, H);
  lay->dec_emb = add(lay, "decoder.embedding.weight", V, H, CTL_INIT_NORMAL, 0);
  lay->att_in = add(lay, "decoder.attention.input_proj.weight", H, H, CTL_INIT_LINEAR, H);
  lay->att_out = add(lay, "decoder.attention.output_proj.weight", H, 2 * H, CTL_INIT_LINEAR, 2 * H);
  lay->out_w = add(lay, "decoder.out.weight", V, H, CTL_INIT_LINEAR, H);
  lay->out_b = add(lay, "decoder.out.bias", V, 0, CTL_INIT_LINEAR, H);
}

void ctl_layout_init(const CtlLayout *lay, float *p, Rng *rng) {
  for (int i = 0; i < lay->n; i++) {
    const CtlParam *t = &lay->p[i];
    size_t count = (size_t)t->rows * (t->cols ? t->cols : 1);
    float *x = p + t->off;
    double bound = t->fan_in > 0 ? 1.0 / sqrt((double)t->fan_in) : 0;
    for (size_t k = 0; k < count; k++)
      x[k] = t->init == CTL_INIT_NORMAL ? (float)rng_normal(rng)
                                         : (float)((2 * rng_uniform(rng) - 1) * bound);
  }
}
