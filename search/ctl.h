// search/ctl.h — the NAO controller: encoder, performance predictor, decoder,
// their training (Adam, clipping, augmentation) and the inference step.
//
// What it computes is NAO-SPEC.md §1c, the reference's NAO_V1 controller:
//   tokens (N, L) -> embedding (V, E) -> pairs of embeddings as T = L/r steps of
//   width H = r*E -> LSTM(H) -> per-step L2 normalisation = O (T, N, H)
//   -> e = normalise(mean_t O) -> MLP (ReLU, dropout) -> sigmoid = prediction
//   decoder: state (e, e), embedding (V, H) -> LSTM(H) -> attention over O
//   -> tanh(W_out [ctx; h]) -> linear (V) -> log-softmax.
// Loss = trade_off * MSE + (1 - trade_off) * NLL (mean over N*L tokens).
//
// The math lives in ctl_net_*.c, generic over the float type (ctl_net.h): the
// controller runs in float32; the gradient checks run the very same code in
// double. This file is the float32 object the search uses: parameters in one
// flat array laid out by CtlLayout in the reference's state_dict order and names,
// Adam state, a workspace that grows with the batch and is never reallocated
// inside a step.
#ifndef NAO_CTL_H
#define NAO_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/rng.h"

enum {
  CTL_MAX_VOCAB = 64,    // allowed-token sets are 64-bit masks
  CTL_MAX_LEN = 256,     // tokens per architecture
  CTL_MAX_MLP = 8,       // predictor layers
  CTL_MAX_PARAMS = 32,   // named tensors
  CTL_NAME_MAX = 64,
};

typedef struct {
  int vocab;          // V: tokens, 0 = SOS (reference 12)
  int length;         // L: tokens per architecture = decoder steps (40)
  int enc_len;        // T: encoder steps, L % T == 0 (20)
  int emb;            // E: encoder embedding width, (L / T) * E == hidden (48)
  int hidden;         // H: encoder and decoder LSTM width (96)
  int mlp_layers;     // predictor hidden layers (3)
  int mlp_hidden;     // their width (200)
  double mlp_dropout; // dropout after each predictor layer in training (0.1)
  double trade_off;   // weight of the MSE; the NLL gets 1 - trade_off (0.8)
  double lr;          // Adam learning rate (1e-3)
  double l2;          // Adam weight decay, added to the gradient (1e-4)
  double grad_bound;  // global L2 norm clip (5)
  int batch;          // training batch (100)
  int threads;        // workers a batch is split over (1); BLAS single-threaded meanwhile
} CtlConfig;

// The reference's values (train_search.py) for a space of `vocab` tokens and
// `length` tokens per architecture (12 and 40 for the 5-op NAO space).
void ctl_config_default(CtlConfig *c, int vocab, int length);
// 0, or -1 with a message naming the setting that is wrong.
int ctl_config_check(const CtlConfig *c, char *err, size_t errlen);

// ---------------------------------------------------------------- parameters
typedef enum { CTL_INIT_NORMAL, CTL_INIT_LSTM, CTL_INIT_LINEAR } CtlInit;

typedef struct {
  char name[CTL_NAME_MAX];  // state_dict key, e.g. "encoder.rnn.weight_ih_l0"
  int rows, cols;           // cols == 0: a vector of `rows`
  size_t off;               // offset in the flat array
  CtlInit init;
  int fan_in;               // bound 1/sqrt(fan_in) (LSTM: hidden)
} CtlParam;

// Offsets of every tensor in the flat parameter array, in state_dict order.
typedef struct {
  int n;
  CtlParam p[CTL_MAX_PARAMS];
  size_t total, n_encoder;       // all parameters; those under "encoder."
  size_t enc_emb, enc_wih, enc_whh, enc_bih, enc_bhh;
  size_t mlp_w[CTL_MAX_MLP], mlp_b[CTL_MAX_MLP], reg_w, reg_b;
  size_t dec_wih, dec_whh, dec_bih, dec_bhh, dec_emb, att_in, att_out, out_w, out_b;
} CtlLayout;

void ctl_layout_build(CtlLayout *lay, const CtlConfig *c);
// PyTorch's default initialisation, drawn from rng: Embedding N(0,1); LSTM
// U(±1/sqrt(H)); Linear weights and biases U(±1/sqrt(fan_in)) (kaiming-uniform
// with a = sqrt(5) reduces to that bound).
void ctl_layout_init(const CtlLayout *lay, float *p, Rng *rng);

// ---------------------------------------------------------------- the controller
typedef struct CtlWork_f32 CtlWork_f32;  // ctl_net.h
typedef struct CtlWorker CtlWorker;      // ctl.c: a workspace and gradient per thread

typedef struct {
  CtlConfig cfg;
  CtlLayout lay;
  float *p;          // parameters (lay.total)
  float *g;          // gradients
  float *adam_m, *adam_v;
  long adam_step;
  CtlWorker *workers;  // cfg.threads of them
  int n_workers;
  float *masks;      // (mlp_layers, cap, mlp_hidden) dropout multipliers of a batch
  int mask_cap;
  int *batch_tok;    // (cap, L) the current batch after augmentation
  float *batch_y;    // (cap)
  int *perm;         // (cap) the epoch's sample order
  int batch_cap;
} Ctl;

typedef struct {
  double loss, mse, nll;
} CtlLoss;

// Allocates and initialises a controller (cfg must pass ctl_config_check).
void ctl_create(Ctl *ctl, const CtlConfig *cfg, Rng *init_rng);
void ctl_destroy(Ctl *ctl);
// The workspace, grown to hold a batch of n (for tests and tools that call
// the ctl_net.h functions directly).
CtlWork_f32 *ctl_workspace(Ctl *ctl, int n);
// A fresh Adam (the reference re-creates its optimizer every round).
void ctl_adam_reset(Ctl *ctl);

// Swaps parts of a token sequence into an equivalent one (NAO spaces: a node's
// two branches); called once per sample per fetch. NULL: no augmentation.
typedef void (*CtlAugmentFn)(void *ctx, int *tokens, Rng *rng);

// One optimisation step on n sequences (N, L) with targets in [0, 1]:
// forward in training mode (dropout from rng), backward, clip, Adam.
CtlLoss ctl_train_step(Ctl *ctl, int n, const int *tokens, const float *targets, Rng *rng);
// Clips ctl->g to the global norm bound and takes an Adam step (the second
// half of ctl_train_step; exposed for the parity test).
void ctl_optimizer_step(Ctl *ctl);
// One epoch over a data set: shuffled batches of cfg.batch (the last may be
// smaller), each sample augmented when fetched. Returns the mean losses
// weighted by batch size, as the reference reports them.
CtlLoss ctl_train_epoch(Ctl *ctl, int n, const int *tokens, const float *targets,
                        CtlAugmentFn aug, void *aug_ctx, Rng *rng);

// Predictions in [0, 1] for n sequences, evaluation mode (no dropout).
void ctl_predict(Ctl *ctl, int n, const int *tokens, float *pred);

// The inference step for n sequences: move the encoder outputs along the
// gradient of the summed predictions by lambda, renormalise, decode greedily
// from (e', e') with memory O'. allowed[t] is the set of tokens position t may
// take (bit k = token k). Writes n sequences to out; pred (optional) gets the
// predictions of the inputs. lambda = 0 reconstructs the inputs' decoding.
void ctl_generate(Ctl *ctl, int n, const int *tokens, double lambda, const uint64_t *allowed,
                  int *out, float *pred);

// Pairwise accuracy of the reference (utils.pairwise_accuracy): the fraction of
// pairs i < j that a and b order the same way (ties in a count as >=).
double ctl_pairwise_accuracy(const double *a, const double *b, int n);

// ---------------------------------------------------------------- files
// Saves the parameters under their state_dict names as float32 safetensors,
// atomically (temporary file, fsync, rename). Metadata records the config.
int ctl_save(const Ctl *ctl, const char *path, char *err, size_t errlen);
// Loads parameters saved by ctl_save (or converted from a reference
// checkpoint): every name must be present with the right shape.
int ctl_load(Ctl *ctl, const char *path, char *err, size_t errlen);

#endif
