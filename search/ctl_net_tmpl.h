// search/ctl_net_tmpl.h — declarations of the controller's math for one float
// type. No include guard: ctl_net.h includes it twice, with CTL_REAL = float and
// CTL_SFX(x) = x##_f32, then with double and _f64. The definitions are the .inc
// files that ctl_net_f32.c and ctl_net_f64.c include the same way.
//
// Layouts: step-major, so an LSTM step is one contiguous (N, ·) matrix.
//   tokens (N, L) int; encoder tensors (T, N, ·); decoder tensors (L, N, ·);
//   gates (·, N, 4H) in PyTorch's order i, f, g, o, after their nonlinearities.
// Gradients are accumulated (+=) into parameter-gradient arrays; activation
// gradients are written (=) unless a comment says otherwise.

typedef struct CTL_SFX(CtlWork) {
  int cap;                    // batch capacity
  int n;                      // batch of the last forward
  int has_masks;              // the last forward used dropout masks
  // encoder
  CTL_REAL *etab;             // (r, V, 4H) emb @ W_ih[:, kE:(k+1)E]^T per chunk k
  CTL_REAL *egates;           // (T, N, 4H)
  CTL_REAL *ec, *etc, *eh;    // (T, N, H) cell, tanh(cell), hidden
  CTL_REAL *enorm;            // (T, N) norms of eh rows
  CTL_REAL *O;                // (T, N, H) normalised encoder outputs
  CTL_REAL *m, *mnorm, *e;    // (N, H) mean of O, (N) its norm, (N, H) arch embedding
  CTL_REAL *mlp_z, *mlp_a;    // (layers, N, M) pre-activations, outputs (relu * mask)
  CTL_REAL *masks;            // (layers, N, M) dropout multipliers of the last forward
  CTL_REAL *yhat;             // (N) predictions
  // decoder (teacher forcing)
  CTL_REAL *dtab;             // (V, 4H) dec_emb @ W_ih^T
  CTL_REAL *dgates;           // (L, N, 4H)
  CTL_REAL *dc, *dtc, *dh;    // (L, N, H)
  CTL_REAL *K, *alpha, *ctx;  // keys (T, N, H) in an (L, N, H) buffer, (L, N, T), (L, N, H)
  CTL_REAL *ht;               // (L, N, H) tanh(W_out [ctx; h])
  CTL_REAL *logp;             // (L, N, V)
  // backward scratch
  CTL_REAL *g_rows;           // (L, N, max(4H, V)) dlogits, then gate gradients
  CTL_REAL *g_ht, *g_ctx, *g_h;  // (L, N, H)
  CTL_REAL *g_alpha;          // (L, N, T)
  CTL_REAL *g_O;              // (T, N, H)
  CTL_REAL *g_e, *g_m;        // (N, H)
  CTL_REAL *g_mlp;            // (2, N, max(M, H)) ping-pong
  CTL_REAL *g_tab;            // (r, V, 4H) token-table gradients
  CTL_REAL *g_state;          // (2, N, H) dh, dc carried between steps
  int *row_in, *row_tgt;      // (L, N) decoder input and target token of each row
  // greedy decoding: one step
  CTL_REAL *s_gates;          // (N, 4H)
  CTL_REAL *s_h, *s_c;        // (2, N, H) ping-pong state
  CTL_REAL *s_tc, *s_ctx, *s_ht;  // (N, H)
  CTL_REAL *s_alpha;          // (N, T)
  CTL_REAL *s_logit;          // (N, V) log-probabilities
  int *s_tok;                 // (N) the previous step's choice
} CTL_SFX(CtlWork);

void CTL_SFX(ctl_work_init)(CTL_SFX(CtlWork) *w, const CtlConfig *c, int cap);
void CTL_SFX(ctl_work_free)(CTL_SFX(CtlWork) *w);

// ---------------------------------------------------------------- building blocks
// C (m x n, ldc) = op(A) op(B) + beta * C, row-major; ta/tb: 1 = transposed.
void CTL_SFX(ctl_mm)(int ta, int tb, int m, int n, int k, const CTL_REAL *a, int lda,
                     const CTL_REAL *b, int ldb, CTL_REAL beta, CTL_REAL *c, int ldc);

// LSTM over `steps` steps of batch n, width h. gates must hold the input part
// (x W_ih^T + b_ih + b_hh) on entry and hold the activated gates on return.
// h0/c0: (n, h) initial state, NULL = zeros. Outputs cs, tcs = tanh(cs), hs.
void CTL_SFX(ctl_lstm_fwd)(int n, int steps, int h, const CTL_REAL *whh, const CTL_REAL *h0,
                           const CTL_REAL *c0, CTL_REAL *gates, CTL_REAL *cs, CTL_REAL *tcs,
                           CTL_REAL *hs);
// Backward: dhs (steps, n, h) the loss gradient on each step's output; writes
// dgates (steps, n, 4h) = gradient w.r.t. the gate pre-activations (= w.r.t.
// the input part), adds dW_hh, writes dh0/dc0 when non-NULL. scratch: (2, n, h).
void CTL_SFX(ctl_lstm_bwd)(int n, int steps, int h, const CTL_REAL *whh, const CTL_REAL *h0,
                           const CTL_REAL *c0, const CTL_REAL *gates, const CTL_REAL *cs,
                           const CTL_REAL *tcs, const CTL_REAL *hs, const CTL_REAL *dhs,
                           CTL_REAL *dgates, CTL_REAL *dwhh, CTL_REAL *dh0, CTL_REAL *dc0,
                           CTL_REAL *scratch);

// Row-wise L2 normalisation y = x / max(|x|, 1e-12) (F.normalize); norms (rows).
void CTL_SFX(ctl_l2norm_fwd)(int rows, int dim, const CTL_REAL *x, CTL_REAL *y, CTL_REAL *norms);
// dx = d(y)/dx^T dy; dx may alias dy.
void CTL_SFX(ctl_l2norm_bwd)(int rows, int dim, const CTL_REAL *y, const CTL_REAL *norms,
                             const CTL_REAL *dy, CTL_REAL *dx);

// Attention of every decoder step over the encoder outputs, batch n:
// hs (D, n, H), O (T, n, H), w_in (H, H), w_out (H, 2H). The reference's
// q = W_in h, score_j = q . O_j equals h . K_j with keys K = O W_in (T, n, H),
// computed once by ctl_attn_keys. alpha = softmax_j(scores); ctx = sum_j
// alpha_j O_j; ht = tanh(W_out [ctx; hs]). Requires T <= D in the backward.
void CTL_SFX(ctl_attn_keys)(int n, int T, int H, const CTL_REAL *O, const CTL_REAL *w_in, CTL_REAL *K);
void CTL_SFX(ctl_attn_fwd)(int n, int D, int T, int H, const CTL_REAL *hs, const CTL_REAL *O,
                           const CTL_REAL *K, const CTL_REAL *w_out, CTL_REAL *alpha, CTL_REAL *ctx,
                           CTL_REAL *ht);
// Backward from g_ht (D, n, H; overwritten). Adds to dw_in, dw_out and g_O
// (through ctx and through the keys); writes g_hs. Scratch: g_ctx (D, n, H),
// g_alpha (D, n, T).
void CTL_SFX(ctl_attn_bwd)(int n, int D, int T, int H, const CTL_REAL *hs, const CTL_REAL *O,
                           const CTL_REAL *K, const CTL_REAL *w_in, const CTL_REAL *w_out,
                           const CTL_REAL *alpha, const CTL_REAL *ctx, const CTL_REAL *ht,
                           CTL_REAL *g_ht, CTL_REAL *g_ctx, CTL_REAL *g_alpha, CTL_REAL *dw_in,
                           CTL_REAL *dw_out, CTL_REAL *g_O, CTL_REAL *g_hs);

// Output layer and log-softmax over V for `rows` rows of width H.
void CTL_SFX(ctl_out_fwd)(int rows, int H, int V, const CTL_REAL *x, const CTL_REAL *w,
                          const CTL_REAL *b, CTL_REAL *logp);
// NLL: -scale * sum_r logp[r, target[r]] with targets given per row.
double CTL_SFX(ctl_nll)(int rows, int V, const CTL_REAL *logp, const int *target, double scale);
// Backward of scale * NLL through log-softmax and the layer: writes glogit
// (rows, V) and g_x (rows, H); adds dw, db.
void CTL_SFX(ctl_out_bwd)(int rows, int H, int V, const CTL_REAL *x, const CTL_REAL *w,
                          const CTL_REAL *logp, const int *target, double scale,
                          CTL_REAL *glogit, CTL_REAL *g_x, CTL_REAL *dw, CTL_REAL *db);

// Mean over the T steps of O (T, n, H) into m, then e = normalise(m).
void CTL_SFX(ctl_pool_fwd)(int n, int T, int H, const CTL_REAL *O, CTL_REAL *m, CTL_REAL *e,
                           CTL_REAL *mnorm);

// ---------------------------------------------------------------- the whole model
// p: parameters laid out by lay. tokens (n, L). masks: (layers, n, M) dropout
// multipliers or NULL (evaluation mode). Runs the encoder and predictor, and
// the teacher-forced decoder when `decode` is set (input [0, tokens[0..L-2]]).
void CTL_SFX(ctl_forward)(const CtlConfig *c, const CtlLayout *lay, const CTL_REAL *p,
                          CTL_SFX(CtlWork) *w, int n, const int *tokens, const CTL_REAL *masks,
                          int decode);
// From w->O of the last forward (batch w->n): pooling, e and the predictor's
// w->yhat again (the head of the encoder; the gradient checks perturb O).
void CTL_SFX(ctl_head_fwd)(const CtlConfig *c, const CtlLayout *lay, const CTL_REAL *p,
                           CTL_SFX(CtlWork) *w, const CTL_REAL *masks);
// Losses of the last forward (decode must have been set) against targets (n).
CtlLoss CTL_SFX(ctl_loss)(const CtlConfig *c, const CTL_SFX(CtlWork) *w, const int *tokens,
                          const CTL_REAL *targets);
// Gradient of the loss of the last forward: g (lay->total) is overwritten.
void CTL_SFX(ctl_backward)(const CtlConfig *c, const CtlLayout *lay, const CTL_REAL *p,
                           CTL_SFX(CtlWork) *w, const int *tokens, const CTL_REAL *targets,
                           CTL_REAL *g);
// The inference step's gradient: w->g_O (T, n, H) = d(sum_n yhat_n) / dO of the
// last forward (which must have run without masks).
void CTL_SFX(ctl_grad_O)(const CtlConfig *c, const CtlLayout *lay, const CTL_REAL *p,
                         CTL_SFX(CtlWork) *w);
// Greedy decoding from state (e, e) with attention memory O (T, n, H): at step
// t the argmax of the logits over allowed[t] (lowest id on ties). out (n, L).
void CTL_SFX(ctl_decode_greedy)(const CtlConfig *c, const CtlLayout *lay, const CTL_REAL *p,
                                CTL_SFX(CtlWork) *w, int n, const CTL_REAL *e,
                                const CTL_REAL *O, const uint64_t *allowed, int *out);
