"""A PyTorch model of the NAO controller (encoder, predictor, decoder), written from
NAO-SPEC.md sections 1b/1c for the parity test (tests/py/test_ctl_parity.py) and the
speed bench (bench/ctl_speed.py). Not a test itself (no test_ prefix).

It computes what the reference's NAO_V1 controller computes and is structured the
way the reference runs it: nn.LSTM for the encoder over the whole sequence, and a
Python loop over the decoder's steps calling nn.LSTM on one step at a time, the
attention, the output layer and the constrained symbol choice at every step (the
reference makes that choice in training too). Parameter names are the reference's
state_dict keys.

Also here: a minimal safetensors reader/writer (numpy), the NAO spaces' decoding
masks, and the swap augmentation, so that tests and benches need nothing else.
"""
import json
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- safetensors
_DT = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8}


def st_read(path):
    """Returns {name: numpy array} and the metadata dict of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + hlen
    out = {}
    for name, d in header.items():
        b, e = d["data_offsets"]
        arr = np.frombuffer(data[base + b:base + e], dtype=_DT[d["dtype"]])
        out[name] = arr.reshape(d["shape"]).copy()
    return out, meta


def st_write(path, tensors, meta=None):
    """Writes {name: numpy array} (float32/float64/int32/int64) as safetensors."""
    inv = {np.dtype(v): k for k, v in _DT.items()}
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        raw = arr.tobytes()
        header[name] = {"dtype": inv[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if meta:
        header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    h = json.dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- spaces
def mask_from_bits(bits, vocab):
    """(L, vocab) bool from per-position 64-bit masks (bit k = token k allowed)."""
    m = torch.zeros(len(bits), vocab, dtype=torch.bool)
    for t, b in enumerate(bits):
        for k in range(vocab):
            m[t, k] = bool((int(b) >> k) & 1)
    return m


def nao_small_mask(length=40, vocab=12):
    """Allowed tokens per position in the 5-op NAO space (NAO-SPEC 1b): input slot of
    node k: 1..k+2; op slot: 7..11."""
    m = torch.zeros(length, vocab, dtype=torch.bool)
    for t in range(length):
        if t % 2 == 0:
            k = (t // 2) % 10 // 2
            m[t, 1:k + 3] = True
        else:
            m[t, 7:12] = True
    return m


def swap_augment(seq, a, b, nodes=5):
    """Swaps the (input, op) pairs of node a of the first cell and node b of the second."""
    s = list(seq)
    cell = 4 * nodes
    for base in (4 * a, cell + 4 * b):
        s[base:base + 2], s[base + 2:base + 4] = s[base + 2:base + 4], s[base:base + 2]
    return s


# ---------------------------------------------------------------- the model
class _Encoder(nn.Module):
    def __init__(self, vocab, emb, hidden, src_len, enc_len, mlp_layers, mlp_hidden, mlp_dropout):
        super().__init__()
        self.src_len, self.enc_len, self.emb_size, self.hidden = src_len, enc_len, emb, hidden
        self.embedding = nn.Embedding(vocab, emb)
        self.rnn = nn.LSTM(hidden, hidden, 1, batch_first=True)
        self.mlp = nn.Sequential()
        for i in range(mlp_layers):
            self.mlp.add_module("layer_%d" % i, nn.Sequential(
                nn.Linear(hidden if i == 0 else mlp_hidden, mlp_hidden), nn.ReLU(),
                nn.Dropout(mlp_dropout)))
        self.regressor = nn.Linear(hidden if mlp_layers == 0 else mlp_hidden, 1)

    def forward(self, x, masks=None):
        """x (N, src_len) tokens. masks: optional list of (N, mlp_hidden) dropout
        multipliers (already scaled by 1/(1-p)) replacing nn.Dropout, for parity."""
        emb = self.embedding(x).view(x.size(0), self.enc_len, -1)   # (N, T, H)
        out, _ = self.rnn(emb)
        O = F.normalize(out, 2, dim=-1)                              # (N, T, H)
        e = F.normalize(O.mean(dim=1), 2, dim=-1)                    # (N, H)
        z = e
        for i, layer in enumerate(self.mlp):
            lin, relu, drop = layer[0], layer[1], layer[2]
            z = relu(lin(z))
            z = drop(z) if masks is None else z * masks[i]
        y = torch.sigmoid(self.regressor(z))                        # (N, 1)
        return O, e, y


class _Attention(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.input_proj = nn.Linear(hidden, hidden, bias=False)
        self.output_proj = nn.Linear(2 * hidden, hidden, bias=False)

    def forward(self, h, O):
        """h (N, 1, H), O (N, T, H) -> (N, 1, H)"""
        q = self.input_proj(h)
        a = F.softmax(torch.bmm(q, O.transpose(1, 2)), dim=-1)       # (N, 1, T)
        ctx = torch.bmm(a, O)
        return torch.tanh(self.output_proj(torch.cat((ctx, h), dim=2)))


class _Decoder(nn.Module):
    def __init__(self, vocab, hidden, length):
        super().__init__()
        self.length = length
        self.rnn = nn.LSTM(hidden, hidden, 1, batch_first=True)
        self.embedding = nn.Embedding(vocab, hidden)
        self.attention = _Attention(hidden)
        self.out = nn.Linear(hidden, vocab)

    def step(self, tok, state, O):
        h, state = self.rnn(self.embedding(tok), state)             # (N, 1, H)
        logp = F.log_softmax(self.out(self.attention(h, O)).squeeze(1), dim=-1)
        return logp, state

    def forward(self, x, e, O, allowed):
        """Teacher forcing when x (N, len) is given, else constrained greedy decoding.
        Returns log-probs (N, len, V) and the chosen symbols (N, len)."""
        n = O.size(0)
        state = (e.unsqueeze(0).contiguous(), e.unsqueeze(0).contiguous())
        tok = torch.zeros(n, 1, dtype=torch.long) if x is None else x[:, :1]
        logps, syms = [], []
        for t in range(self.length):
            if x is not None:
                tok = x[:, t:t + 1]
            logp, state = self.step(tok, state, O)
            logps.append(logp)
            masked = logp.masked_fill(~allowed[t], float("-inf"))
            tok = masked.topk(1, dim=1)[1]
            syms.append(tok)
        return torch.stack(logps, 1), torch.cat(syms, 1)


class Controller(nn.Module):
    def __init__(self, vocab=12, emb=48, hidden=96, src_len=40, enc_len=20, mlp_layers=3,
                 mlp_hidden=200, mlp_dropout=0.1, dec_len=40):
        super().__init__()
        self.encoder = _Encoder(vocab, emb, hidden, src_len, enc_len, mlp_layers, mlp_hidden,
                                mlp_dropout)
        self.decoder = _Decoder(vocab, hidden, dec_len)

    def forward(self, x, dec_in, masks=None, allowed=None):
        O, e, y = self.encoder(x, masks)
        if allowed is None:
            allowed = torch.ones(x.size(1), self.decoder.out.out_features, dtype=torch.bool)
        logp, syms = self.decoder(dec_in, e, O, allowed)
        return y, logp, syms, O, e

    def loss(self, x, target, masks=None, trade_off=0.8, allowed=None):
        """Teacher-forced loss: 0.8 MSE + 0.2 NLL (mean over N*len tokens). Returns a
        dict: loss, mse, nll, y (N, 1), O (N, T, H), e (N, H), logp (N, len, V)."""
        dec_in = torch.cat([torch.zeros(x.size(0), 1, dtype=torch.long), x[:, :-1]], 1)
        y, logp, _, O, e = self.forward(x, dec_in, masks, allowed)
        mse = F.mse_loss(y.squeeze(1), target)
        nll = F.nll_loss(logp.reshape(-1, logp.size(-1)), x.reshape(-1))
        loss = trade_off * mse + (1 - trade_off) * nll
        return {"loss": loss, "mse": mse, "nll": nll, "y": y, "O": O, "e": e, "logp": logp}

    def generate(self, x, lam, allowed):
        """The inference step (NAO-SPEC 1c): gradient of sum(y) w.r.t. the normalised
        encoder outputs O, O' = normalise(O + lam*g), e' = normalise(mean O'), greedy
        constrained decoding from (e', e') with memory O'."""
        with torch.enable_grad():
            O, e, y = self.encoder(x)
            g = torch.autograd.grad(y.sum(), O)[0]
        O2 = F.normalize(O.detach() + lam * g, 2, dim=-1)
        e2 = F.normalize(O2.mean(dim=1), 2, dim=-1)
        with torch.no_grad():
            _, syms = self.decoder(None, e2, O2, allowed)
        return syms, y.detach(), g
