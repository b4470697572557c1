"""tests/py/naonet_ref.py — a PyTorch model of the NAO reference networks.

Written from ../shared/NAO-SPEC.md §1a (not from the reference code): the
networks NASNetworkCIFAR / NASNetworkImageNet compute, with the same module
tree, so that state_dict() gives the reference's names, order and shapes.
It is the peer of naoc's lowering in the tests: names and statistics now,
logits and gradients later (parity), so every detail follows the spec:

  - BN: nn.BatchNorm2d defaults (eps 1e-5, momentum 0.1, affine).
  - avg 3x3 of the 5-op space ignores padding in the divisor, ops 14/15 count
    it; ops 10/13 zero-pad right and bottom by one before a 2x2 pool with pad 0.
  - FactorizedReduce: path 1 takes x[:, :, 0::2, 0::2], path 2
    x[:, :, 1::2, 1::2] (zero pad right/bottom, drop first row/column,
    subsample), 1x1 convs, concat, BN; no ReLU inside.
  - The auxiliary head: ReLU into a new tensor (decision O3), avg 5x5 pad 0
    with stride 3 (CIFAR head on 8x8) or 2 (ImageNet head, and any head that
    sees 7x7: decision O4), conv1x1 128, BN, ReLU, conv 2x2 768, BN, ReLU,
    linear; computed only in training mode.
  - Drop path on both branches of every node in training mode:
    keep = max(p, 1 - (t+1)/T * (i+1)/Ncells * (1-p)) (decisions O10/O11/O17:
    never below p), one Bernoulli(keep) per sample, x / keep * mask.
  - The ImageNet stem's ReLUs are not in place: the reference's in-place ReLU
    on stem0's output only changes what cell 0 reads, and cell 0 always starts
    that input with ReLU + FactorizedReduce (ReLU twice is ReLU once).

Random masks come from hooks on the model (`mask_fn`), so a parity test can
feed the masks another implementation drew.
"""

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    # name: (in_channels, height, width, classes, stem)
    "cifar10": (3, 32, 32, 10, "cifar"),
    "imagenet": (3, 224, 224, 1000, "imagenet"),
    "fashion-mnist": (1, 28, 28, 10, "cifar"),
}

OP_NAMES = [
    "sep3x3", "sep5x5", "avg3x3", "max3x3", "identity", "identity_l", "conv1x1", "conv3x3",
    "conv1x3_3x1", "conv1x7_7x1", "max2x2", "max3x3_l", "max5x5", "avg2x2", "avg3x3_countpad",
    "avg5x5",
]


# ----------------------------------------------------------------- run-time state

class Runtime:
    """What every module may need at run time: the step and the mask sources.

    mask_fn(kind, shape, keep, tag) returns a 0/1 float tensor of `shape`;
    kind is "drop_path" (tag = (cell, node, "x"|"y")) or "dropout" (tag =
    "dropout"). The default draws Bernoulli(keep)."""

    def __init__(self, steps):
        self.steps = steps
        self.step = 0
        self.mask_fn = None

    def mask(self, kind, shape, keep, tag, like):
        if self.mask_fn is not None:
            m = self.mask_fn(kind, shape, keep, tag)
            return m.to(dtype=like.dtype, device=like.device)
        return torch.bernoulli(torch.full(shape, keep, dtype=like.dtype, device=like.device))


def drop_path_keep(p, step, steps, cell, n_cells):
    """Keep probability of drop-path at 0-based `step` of `steps`, never below p."""
    keep = 1.0 - (step + 1) / steps * (cell + 1) / n_cells * (1.0 - p)
    return max(p, keep)


# ----------------------------------------------------------------- building blocks

def bn(c):
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1, affine=True)


class ReLUConvBN(nn.Module):
    """ReLU -> conv1x1 (no bias) -> BN; the calibration of a state's channels."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False)
        self.bn = bn(c_out)

    def forward(self, x):
        return self.bn(self.conv(self.relu(x)))


class FactorizedReduce(nn.Module):
    """Halves H and W: two 1x1 convs on the even and the odd pixel grids."""

    def __init__(self, c_in, c_out):
        super().__init__()
        assert c_out % 2 == 0
        # index 0 of each path is the stride-2 subsampling (no parameters)
        self.path1 = nn.Sequential(nn.AvgPool2d(1, stride=2),
                                   nn.Conv2d(c_in, c_out // 2, 1, bias=False))
        self.path2 = nn.Sequential(nn.AvgPool2d(1, stride=2),
                                   nn.Conv2d(c_in, c_out // 2, 1, bias=False))
        self.bn = bn(c_out)

    def forward(self, x):
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.path1(x), self.path2(shifted)], dim=1))


class SepConv(nn.Module):
    """ReLU dw pw BN ReLU dw pw BN; stride on the first depthwise conv."""

    def __init__(self, c, k, stride):
        super().__init__()
        p = k // 2
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, k, stride=stride, padding=p, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            bn(c),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, k, stride=1, padding=p, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            bn(c),
        )

    def forward(self, x):
        return self.op(x)


class ConvOp(nn.Module):
    """Ops 6/7: ReLU conv(k) BN; ops 8/9: ReLU conv(1xk) BN ReLU conv(kx1) BN."""

    def __init__(self, c, k, stride, pair):
        super().__init__()
        p = k // 2
        if not pair:
            self.ops = nn.Sequential(
                nn.ReLU(inplace=False),
                nn.Conv2d(c, c, k, stride=stride, padding=p, bias=False),
                bn(c),
            )
        else:
            self.ops = nn.Sequential(
                nn.ReLU(inplace=False),
                nn.Conv2d(c, c, (1, k), stride=(1, stride), padding=(0, p), bias=False),
                bn(c),
                nn.ReLU(inplace=False),
                nn.Conv2d(c, c, (k, 1), stride=(stride, 1), padding=(p, 0), bias=False),
                bn(c),
            )

    def forward(self, x):
        return self.ops(x)


def make_op(op, c, stride):
    """The module of op id `op` on c channels (identity: nn.Identity)."""
    if op == 0:
        return SepConv(c, 3, stride)
    if op == 1:
        return SepConv(c, 5, stride)
    if op == 2:
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if op in (3, 11):
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if op in (4, 5):
        return nn.Identity()
    if op == 6:
        return ConvOp(c, 1, stride, pair=False)
    if op == 7:
        return ConvOp(c, 3, stride, pair=False)
    if op == 8:
        return ConvOp(c, 3, stride, pair=True)
    if op == 9:
        return ConvOp(c, 7, stride, pair=True)
    if op == 10:
        return nn.MaxPool2d(2, stride=stride, padding=0)
    if op == 12:
        return nn.MaxPool2d(5, stride=stride, padding=2)
    if op == 13:
        return nn.AvgPool2d(2, stride=stride, padding=0)
    if op == 14:
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=True)
    if op == 15:
        return nn.AvgPool2d(5, stride=stride, padding=2, count_include_pad=True)
    raise ValueError("unknown op id %d" % op)


# ----------------------------------------------------------------- cells

class Node(nn.Module):
    """Node b of a cell: branch(x_in, x_op) + branch(y_in, y_op)."""

    def __init__(self, tokens, c, reduction, cell, b, n_cells, drop_path, rt):
        super().__init__()
        self.x_in, self.x_op_id, self.y_in, self.y_op_id = tokens
        self.cell, self.b, self.n_cells = cell, b, n_cells
        self.drop_path = drop_path
        self.rt = rt
        self.x_stride = 2 if reduction and self.x_in < 2 else 1
        self.y_stride = 2 if reduction and self.y_in < 2 else 1
        # registration order = state_dict order: x_op, x_id_fact_reduce, y_op, y_id_fact_reduce
        self.x_op = make_op(self.x_op_id, c, self.x_stride)
        self.x_id_fact_reduce = (FactorizedReduce(c, c)
                                 if self.x_op_id in (4, 5) and self.x_stride == 2 else None)
        self.y_op = make_op(self.y_op_id, c, self.y_stride)
        self.y_id_fact_reduce = (FactorizedReduce(c, c)
                                 if self.y_op_id in (4, 5) and self.y_stride == 2 else None)

    def branch(self, x, op_id, op, fr, side):
        if op_id in (10, 13):
            x = F.pad(x, (0, 1, 0, 1))
        x = op(x)
        if fr is not None:
            x = fr(x)
        if self.training and self.drop_path is not None and self.drop_path < 1:
            keep = drop_path_keep(self.drop_path, self.rt.step, self.rt.steps, self.cell,
                                  self.n_cells)
            if keep < 1:
                mask = self.rt.mask("drop_path", (x.size(0), 1, 1, 1), keep,
                                    (self.cell, self.b, side), x)
                x = x / keep * mask
        return x

    def forward(self, x, y):
        x = self.branch(x, self.x_op_id, self.x_op, self.x_id_fact_reduce, "x")
        y = self.branch(y, self.y_op_id, self.y_op, self.y_id_fact_reduce, "y")
        return x + y


class MaybeCalibrateSize(nn.Module):
    """Brings s0 to s1's size (ReLU + FR) and both to c channels (ReLUConvBN)."""

    def __init__(self, shape0, shape1, c):
        super().__init__()
        (h0, w0, c0), (h1, w1, c1) = shape0, shape1
        self.halve_x = (h0, w0) != (h1, w1)
        if self.halve_x:
            assert (h0, w0) == (2 * h1, 2 * w1), "s0 must be s1's size or twice it"
            self.relu = nn.ReLU(inplace=False)
            self.preprocess_x = FactorizedReduce(c0, c)
        elif c0 != c:
            self.preprocess_x = ReLUConvBN(c0, c)
        else:
            self.preprocess_x = None
        self.preprocess_y = ReLUConvBN(c1, c) if c1 != c else None
        self.out_shape = (h1, w1, c)

    def forward(self, s0, s1):
        if self.halve_x:
            s0 = self.preprocess_x(self.relu(s0))
        elif self.preprocess_x is not None:
            s0 = self.preprocess_x(s0)
        if self.preprocess_y is not None:
            s1 = self.preprocess_y(s1)
        return s0, s1


class FinalCombine(nn.Module):
    """Concatenates the loose ends; larger ones (inputs of a reduction cell) through FR."""

    def __init__(self, shapes, concat, c):
        super().__init__()
        self.concat = concat
        out_h = min(shapes[i][0] for i in concat)
        self.ops = nn.ModuleList()
        self.fr_of = {}
        for i in concat:
            if shapes[i][0] > out_h:
                assert shapes[i][0] == 2 * out_h and i < 2
                self.fr_of[i] = len(self.ops)
                self.ops.append(FactorizedReduce(shapes[i][2], c))
        self.out_hw = (out_h, min(shapes[i][1] for i in concat))

    def forward(self, states):
        parts = []
        for i in self.concat:
            s = states[i]
            if i in self.fr_of:
                s = self.ops[self.fr_of[i]](s)
            parts.append(s)
        return torch.cat(parts, dim=1)


class Cell(nn.Module):
    def __init__(self, arch, shape0, shape1, c, reduction, index, n_cells, drop_path, rt):
        super().__init__()
        self.arch = arch
        self.reduction = reduction
        n_nodes = len(arch) // 4
        self.ops = nn.ModuleList()  # registered first: nodes come before calibration
        self.maybe_calibrate_size = MaybeCalibrateSize(shape0, shape1, c)
        st = self.maybe_calibrate_size.out_shape
        shapes = [st, st]
        used = [0] * (n_nodes + 2)
        for b in range(n_nodes):
            tokens = arch[4 * b:4 * b + 4]
            node = Node(tokens, c, reduction, index, b, n_cells, drop_path, rt)
            self.ops.append(node)
            used[tokens[0]] += 1
            used[tokens[2]] += 1
            xs = shapes[tokens[0]]
            s = node.x_stride
            shapes.append((xs[0] // s, xs[1] // s, c))
        concat = [i for i in range(n_nodes + 2) if used[i] == 0]
        self.final_combine = FinalCombine(shapes, concat, c)
        h, w = self.final_combine.out_hw
        self.out_shape = (h, w, c * len(concat))

    def forward(self, s0, s1):
        s0, s1 = self.maybe_calibrate_size(s0, s1)
        states = [s0, s1]
        for b, node in enumerate(self.ops):
            states.append(node(states[node.x_in], states[node.y_in]))
        return self.final_combine(states)


# ----------------------------------------------------------------- heads

class AuxHead(nn.Module):
    def __init__(self, c_in, classes, pool_stride):
        super().__init__()
        self.relu1 = nn.ReLU(inplace=False)  # decision O3: a new tensor
        self.avg_pool = nn.AvgPool2d(5, stride=pool_stride, padding=0, count_include_pad=False)
        self.conv1 = nn.Conv2d(c_in, 128, 1, bias=False)
        self.bn1 = bn(128)
        self.relu2 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(128, 768, 2, bias=False)
        self.bn2 = bn(768)
        self.relu3 = nn.ReLU(inplace=False)
        self.classifier = nn.Linear(768, classes)

    def forward(self, x):
        x = self.avg_pool(self.relu1(x))
        x = self.relu2(self.bn1(self.conv1(x)))
        x = self.relu3(self.bn2(self.conv2(x)))
        return self.classifier(x.view(x.size(0), -1))


class Dropout(nn.Module):
    """nn.Dropout(1 - keep) whose mask can come from Runtime.mask_fn."""

    def __init__(self, keep, rt):
        super().__init__()
        self.keep = keep
        self.rt = rt

    def forward(self, x):
        if not self.training or self.keep >= 1:
            return x
        mask = self.rt.mask("dropout", tuple(x.shape), self.keep, "dropout", x)
        return x * mask / self.keep


# ----------------------------------------------------------------- the network

def parse_arch(arch):
    if isinstance(arch, str):
        arch = [int(t) for t in arch.split()]
    arch = list(arch)
    assert len(arch) % 8 == 0 and arch, "an arch has 8 tokens per node"
    return arch


class NAONet(nn.Module):
    """NASNetworkCIFAR (stem "cifar") or NASNetworkImageNet (stem "imagenet").

    forward(x, step=0) -> (logits, aux_logits); aux_logits is None in eval
    mode or without an auxiliary head."""

    def __init__(self, arch, channels, layers, dataset="cifar10", in_shape=None, classes=None,
                 stem=None, aux_weight=0.4, keep_prob=0.6, drop_path_keep=0.8, steps=1):
        super().__init__()
        arch = parse_arch(arch)
        b = len(arch) // 8
        in_c, in_h, in_w, n_cls, stem_kind = PRESETS[dataset] if dataset else (0, 0, 0, 0, "cifar")
        if in_shape is not None:
            in_c, in_h, in_w = in_shape
        self.classes = classes if classes is not None else n_cls
        self.stem_kind = stem if stem is not None else stem_kind
        self.aux_weight = aux_weight
        self.rt = Runtime(steps)
        normal, reduce = arch[:4 * b], arch[4 * b:]
        n_cells = 3 * layers + 2
        self.pool_layers = (layers, 2 * layers + 1)
        f = channels
        if self.stem_kind == "cifar":
            self.stem = nn.Sequential(nn.Conv2d(in_c, 3 * f, 3, padding=1, bias=False), bn(3 * f))
            s0 = s1 = (in_h, in_w, 3 * f)
        else:
            assert f % 2 == 0
            self.stem0 = nn.Sequential(
                nn.Conv2d(in_c, f // 2, 3, stride=2, padding=1, bias=False), bn(f // 2),
                nn.ReLU(inplace=False),
                nn.Conv2d(f // 2, f, 3, stride=2, padding=1, bias=False), bn(f))
            self.stem1 = nn.Sequential(
                nn.ReLU(inplace=False),
                nn.Conv2d(f, f, 3, stride=2, padding=1, bias=False), bn(f))
            h = conv_out(conv_out(in_h))
            w = conv_out(conv_out(in_w))
            s0, s1 = (h, w, f), (conv_out(h), conv_out(w), f)
        self.cells = nn.ModuleList()
        self.aux_index = 2 * layers + 1 if aux_weight > 0 else None
        c = f
        dp = drop_path_keep if drop_path_keep is not None and drop_path_keep < 1 else None
        for i in range(n_cells):
            red = i in self.pool_layers
            if red:
                c *= 2
            cell = Cell(reduce if red else normal, s0, s1, c, red, i, n_cells, dp, self.rt)
            self.cells.append(cell)
            s0, s1 = s1, cell.out_shape
            if i == self.aux_index:
                stride = 2 if self.stem_kind == "imagenet" or s1[:2] == (7, 7) else 3
                self.auxiliary_head = AuxHead(s1[2], self.classes, stride)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.dropout = Dropout(keep_prob, self.rt)
        self.classifier = nn.Linear(s1[2], self.classes)
        self.init_parameters()

    def init_parameters(self):
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.kaiming_normal_(p, mode="fan_in", nonlinearity="relu")

    def forward(self, x, step=0):
        self.rt.step = step
        if self.stem_kind == "cifar":
            s0 = s1 = self.stem(x)
        else:
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i == self.aux_index and self.training:
                aux_logits = self.auxiliary_head(s1)
        out = self.global_pooling(s1)
        out = self.dropout(out)
        logits = self.classifier(out.view(out.size(0), -1))
        return logits, aux_logits


def conv_out(size, k=3, stride=2, pad=1):
    return (size + 2 * pad - k) // stride + 1


def smoothed_xent(logits, target, smoothing=0.0):
    """Mean over the batch of sum_k -q_k log p_k, q = (1-eps) onehot + eps/K."""
    logp = F.log_softmax(logits, dim=1)
    k = logits.size(1)
    q = torch.full_like(logp, smoothing / k)
    q.scatter_(1, target.view(-1, 1), 1.0 - smoothing + smoothing / k)
    return (-q * logp).sum(dim=1).mean()


def nao_loss(logits, aux_logits, target, aux_weight, smoothing=0.0):
    loss = smoothed_xent(logits, target, smoothing)
    if aux_logits is not None:
        loss = loss + aux_weight * smoothed_xent(aux_logits, target, smoothing)
    return loss


def state_listing(model):
    """(name, shape) of every state_dict entry but num_batches_tracked, in order."""
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")]


def count_params(model, include_aux=True):
    return sum(p.numel() for n, p in model.named_parameters()
               if include_aux or not n.startswith("auxiliary_head."))


def shape_copy(model):
    """A copy of the model on the meta device: forward computes shapes only
    (fast), masks are ones. For counting, not for values."""
    meta = copy.deepcopy(model).to("meta")
    meta.rt.mask_fn = lambda kind, shape, keep, tag: torch.ones(shape, device="meta")
    return meta


def count_macs(model, in_shape):
    """Multiply-accumulates of Conv2d and Linear layers for one image, eval mode."""
    model = shape_copy(model)
    macs = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs[0] += out[0].numel() * k

    def linear_hook(m, inp, out):
        macs[0] += m.in_features * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    model.eval()
    with torch.no_grad():
        model(torch.zeros((1,) + tuple(in_shape), device="meta"))
    return macs[0]


def random_arch(rng, nodes, ops):
    """An arch string: node b's inputs uniform in 0..b+1, ops from `ops`."""
    toks = []
    for _cell in range(2):
        for b in range(nodes):
            toks += [rng.randrange(b + 2), rng.choice(ops), rng.randrange(b + 2), rng.choice(ops)]
    return " ".join(str(t) for t in toks)


# ----------------------------------------------------------------- NAO-WS supernet
# NAO-SPEC §1c (NASWSNetworkCIFAR): every cell outputs c channels; per node and
# branch, the weights of sep 3x3 / sep 5x5 exist once per possible input id
# (ParameterLists indexed by the input id, WSBN with per-id affine parameters
# and shared running statistics); identity at stride 2 uses the branch's own
# FR for input 0 or 1 (decision O5); the cell ends with loose ends (inputs of a
# reduction cell through fac_1/fac_2) concatenated into WSReLUConvBN, whose
# 1x1 weight is the concat of the per-state blocks w[id].

def _plist(n, *shape):
    return nn.ParameterList([nn.Parameter(torch.empty(*shape)) for _ in range(n)])


class WSBN(nn.Module):
    def __init__(self, n, c):
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))
        self.weight = nn.ParameterList([nn.Parameter(torch.ones(c)) for _ in range(n)])
        self.bias = nn.ParameterList([nn.Parameter(torch.zeros(c)) for _ in range(n)])
        self.momentum = 0.1

    def forward(self, x, j):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight[j], self.bias[j],
                            self.training, self.momentum, 1e-5)


class WSSepConv(nn.Module):
    def __init__(self, n, c, k):
        super().__init__()
        self.k, self.c = k, c
        self.relu1 = nn.ReLU(inplace=False)
        self.W1_depthwise = _plist(n, c, 1, k, k)
        self.W1_pointwise = _plist(n, c, c, 1, 1)
        self.bn1 = WSBN(n, c)
        self.relu2 = nn.ReLU(inplace=False)
        self.W2_depthwise = _plist(n, c, 1, k, k)
        self.W2_pointwise = _plist(n, c, c, 1, 1)
        self.bn2 = WSBN(n, c)

    def forward(self, x, j, stride):
        p = self.k // 2
        x = F.conv2d(self.relu1(x), self.W1_depthwise[j], stride=stride, padding=p, groups=self.c)
        x = self.bn1(F.conv2d(x, self.W1_pointwise[j]), j)
        x = F.conv2d(self.relu2(x), self.W2_depthwise[j], padding=p, groups=self.c)
        return self.bn2(F.conv2d(x, self.W2_pointwise[j]), j)


class WSNode(nn.Module):
    def __init__(self, b, c, reduction, cell, n_cells, drop_path, rt):
        super().__init__()
        self.b, self.cell, self.n_cells, self.drop_path, self.rt = b, cell, n_cells, drop_path, rt
        self.stride = 2 if reduction else 1
        n = b + 2
        for side in ("x", "y"):
            setattr(self, side + "_avg_pool", nn.AvgPool2d(3, padding=1, count_include_pad=False))
            setattr(self, side + "_max_pool", nn.MaxPool2d(3, padding=1))
            setattr(self, side + "_sep_conv_3", WSSepConv(n, c, 3))
            setattr(self, side + "_sep_conv_5", WSSepConv(n, c, 5))
            if reduction:
                setattr(self, side + "_id_reduce_1", FactorizedReduce(c, c))
                setattr(self, side + "_id_reduce_2", FactorizedReduce(c, c))

    def branch(self, x, side, j, op):
        s = self.stride if j < 2 else 1
        if op in (0, 1):
            x = getattr(self, "%s_sep_conv_%d" % (side, 3 if op == 0 else 5))(x, j, s)
        elif op in (2, 3):
            pool = getattr(self, side + ("_avg_pool" if op == 2 else "_max_pool"))
            pool.stride = (s, s)
            x = pool(x)
        elif s == 2:
            x = getattr(self, "%s_id_reduce_%d" % (side, j + 1))(x)
        if self.training and self.drop_path is not None and self.drop_path < 1:
            keep = drop_path_keep(self.drop_path, self.rt.step, self.rt.steps, self.cell,
                                  self.n_cells)
            if keep < 1:
                mask = self.rt.mask("drop_path", (x.size(0), 1, 1, 1), keep,
                                    (self.cell, self.b, side), x)
                x = x / keep * mask
        return x

    def forward(self, states, tokens):
        x_in, x_op, y_in, y_op = tokens
        return self.branch(states[x_in], "x", x_in, x_op) + self.branch(states[y_in], "y", y_in, y_op)


class WSReLUConvBN(nn.Module):
    def __init__(self, n, c):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.w = _plist(n, c, c, 1, 1)
        self.bn = bn(c)

    def forward(self, x, ids):
        return self.bn(F.conv2d(self.relu(x), torch.cat([self.w[i] for i in ids], dim=1)))


class WSCell(nn.Module):
    def __init__(self, nodes, shape0, shape1, c, reduction, index, n_cells, drop_path, rt):
        super().__init__()
        self.reduction, self.nodes = reduction, nodes
        self.ops = nn.ModuleList()
        self.maybe_calibrate_size = MaybeCalibrateSize(shape0, shape1, c)
        h, w, _ = self.maybe_calibrate_size.out_shape
        for b in range(nodes):
            self.ops.append(WSNode(b, c, reduction, index, n_cells, drop_path, rt))
        if reduction:
            self.fac_1 = FactorizedReduce(c, c)
            self.fac_2 = FactorizedReduce(c, c)
            h, w = h // 2, w // 2
        self.final_combine_conv = WSReLUConvBN(nodes + 2, c)
        self.out_shape = (h, w, c)

    def forward(self, s0, s1, arch):
        states = list(self.maybe_calibrate_size(s0, s1))
        used = [0] * (self.nodes + 2)
        for b, node in enumerate(self.ops):
            tokens = arch[4 * b:4 * b + 4]
            used[tokens[0]] += 1
            used[tokens[2]] += 1
            states.append(node(states, tokens))
        concat = [i for i in range(self.nodes + 2) if used[i] == 0]
        if self.reduction:
            if 0 in concat:
                states[0] = self.fac_1(states[0])
            if 1 in concat:
                states[1] = self.fac_2(states[1])
        return self.final_combine_conv(torch.cat([states[i] for i in concat], dim=1), concat)


class NAOWSNet(nn.Module):
    """The supernet; forward(x, arch, step=0) runs the architecture `arch`
    (string or token list, both cells, ops 0-4) and returns (logits, aux)."""

    def __init__(self, channels, layers, nodes=5, dataset="cifar10", in_shape=None, classes=None,
                 aux_weight=0.0, keep_prob=1.0, drop_path_keep=0.9, steps=1):
        super().__init__()
        in_c, in_h, in_w, n_cls, stem_kind = PRESETS[dataset] if dataset else (0, 0, 0, 0, "cifar")
        if in_shape is not None:
            in_c, in_h, in_w = in_shape
        assert stem_kind == "cifar", "the supernet has the CIFAR stem only (O6)"
        self.classes = classes if classes is not None else n_cls
        self.nodes = nodes
        self.rt = Runtime(steps)
        n_cells = 3 * layers + 2
        f = channels
        self.stem = nn.Sequential(nn.Conv2d(in_c, 3 * f, 3, padding=1, bias=False), bn(3 * f))
        s0 = s1 = (in_h, in_w, 3 * f)
        self.cells = nn.ModuleList()
        self.aux_index = 2 * layers + 1 if aux_weight > 0 else None
        dp = drop_path_keep if drop_path_keep is not None and drop_path_keep < 1 else None
        c = f
        for i in range(n_cells):
            red = i in (layers, 2 * layers + 1)
            if red:
                c *= 2
            cell = WSCell(nodes, s0, s1, c, red, i, n_cells, dp, self.rt)
            self.cells.append(cell)
            s0, s1 = s1, cell.out_shape
            if i == self.aux_index:
                stride = 2 if s1[:2] == (7, 7) else 3
                self.auxiliary_head = AuxHead(s1[2], self.classes, stride)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.dropout = Dropout(keep_prob, self.rt)
        self.classifier = nn.Linear(s1[2], self.classes)
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.kaiming_normal_(p, mode="fan_in", nonlinearity="relu")

    def forward(self, x, arch, step=0):
        arch = parse_arch(arch)
        normal, reduce = arch[:4 * self.nodes], arch[4 * self.nodes:]
        self.rt.step = step
        s0 = s1 = self.stem(x)
        aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, reduce if cell.reduction else normal)
            if i == self.aux_index and self.training:
                aux_logits = self.auxiliary_head(s1)
        out = self.dropout(self.global_pooling(s1))
        return self.classifier(out.view(out.size(0), -1)), aux_logits


def scoring_mode(model):
    """Decision O7's scoring pass: eval mode (no dropout, drop-path, aux), but
    every BN normalises with the batch's statistics and leaves the running
    ones untouched (momentum 0). Returns a function that undoes it."""
    model.eval()
    saved = []
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, WSBN)):
            saved.append((m, m.momentum))
            m.train()
            m.momentum = 0.0

    def undo():
        for m, mom in saved:
            m.momentum = mom
            m.eval()
    return undo


if __name__ == "__main__":
    # A quick look: the NAONet-B CIFAR-10 network's size.
    B = "0 1 0 2 0 1 2 2 1 3 0 2 4 0 1 3 2 1 0 3 1 1 1 0 2 1 2 4 1 0 2 3 3 1 2 2 0 2 0 2"
    net = NAONet(B, 36, 6)
    print(count_params(net), count_params(net, False), count_macs(net, (3, 32, 32)))
