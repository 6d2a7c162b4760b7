"""A CAPI train step in PyTorch, written from ../shared/spec/method.md, to time against capi-ts
on the same CPU (npm run bench:pretrain -- --compare). Same shapes and FLOPs as capi-ts: student
encoder on the visible patches + registers, cross-attention predictor on the predicted
positions, weight-normalised head, EMA teacher on all patches, position-wise Sinkhorn-Knopp
targets, the clustering loss with its own AdamW. Axial RoPE on q and k; RMSNorm; exact GELU.
Timing only: no data pipeline, random patches; prints one JSON line.

usage: python3 bench/torch_step.py '{"imageSize":28,"patchSize":4,"dim":128,...,"batchSize":256}'
("forwardOnly": true times the frozen encoder forward instead, for feature extraction.)
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg.get("threads", 2))
torch.manual_seed(0)
# "device": "cuda" runs every tensor and module below on the GPU (PyTorch >= 2.0), in float32 (no TF32).
DEVICE = cfg.get("device", "cpu")
if DEVICE != "cpu":
    torch.set_default_device(DEVICE)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def sync():
    if DEVICE != "cpu":
        torch.cuda.synchronize()

S, P, D, L, H = cfg["imageSize"], cfg["patchSize"], cfg["dim"], cfg["depth"], cfg["heads"]
DP, LP, HP, R, K, B = cfg["predDim"], cfg["predDepth"], cfg["predHeads"], cfg["registers"], cfg["numClusters"], cfg["batchSize"]
G = S // P
N = G * G
N_MASK = int(N * cfg.get("maskRatio", 0.65))
N_VIS = N - N_MASK
N_PRED = cfg["numPredictions"]


def rope_angles(coords, head_dim):
    """coords [B, n, 2] -> cos, sin [B, 1, n, head_dim] (axial: rows on one half, columns on the other)."""
    q = head_dim // 4
    f = 7 * (7e-4 / 7) ** (torch.arange(q) / max(q - 1, 1))
    a = torch.cat([coords[..., :1] * f, coords[..., :1] * f, coords[..., 1:] * f, coords[..., 1:] * f], -1) * 2 * math.pi
    return a.cos()[:, None], a.sin()[:, None]


def rotate_half(x):
    x1, x2 = x.chunk(2, -1)
    return torch.cat([-x2, x1], -1)


class Block(torch.nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h = heads
        self.w1 = torch.nn.Parameter(torch.ones(d))
        self.w2 = torch.nn.Parameter(torch.ones(d))
        self.q, self.k, self.v, self.o = (torch.nn.Linear(d, d, bias=False) for _ in range(4))
        self.fc1 = torch.nn.Linear(d, 4 * d, bias=False)
        self.fc2 = torch.nn.Linear(4 * d, d, bias=False)

    @staticmethod
    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

    def forward(self, x, rq, context=None, rk=None):
        b, n, d = x.shape
        hd = d // self.h
        xn = self.rms(x, self.w1)
        kv = xn if context is None else context
        rk = rq if rk is None else rk
        q = self.q(xn).view(b, n, self.h, hd).transpose(1, 2)
        k = self.k(kv).view(b, kv.shape[1], self.h, hd).transpose(1, 2)
        v = self.v(kv).view(b, kv.shape[1], self.h, hd).transpose(1, 2)
        q = q * rq[0] + rotate_half(q) * rq[1]
        k = k * rk[0] + rotate_half(k) * rk[1]
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), -1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(F.gelu(self.fc1(self.rms(x, self.w2))))


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Linear(3 * P * P, D)
        self.reg = torch.nn.Parameter(torch.randn(1, R, D) * 0.02)
        self.blocks = torch.nn.ModuleList(Block(D, H) for _ in range(L))
        self.norm = torch.nn.Parameter(torch.ones(D))

    def forward(self, patches, coords):
        x = torch.cat([self.reg.expand(patches.shape[0], -1, -1), self.embed(patches)], 1)
        r = rope_angles(torch.cat([torch.zeros(patches.shape[0], R, 2), coords], 1), D // H)
        for blk in self.blocks:
            x = blk(x, r)
        return Block.rms(x, self.norm)


class Student(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = Encoder()
        self.to_pred = torch.nn.Linear(D, DP, bias=False)
        self.mask_token = torch.nn.Parameter(torch.zeros(1, 1, DP))
        self.pred = torch.nn.ModuleList(Block(DP, HP) for _ in range(LP))
        self.head_v = torch.nn.Parameter(torch.randn(K, DP) * 0.02)
        self.head_g = torch.nn.Parameter(torch.ones(K, 1))

    def forward(self, patches, vis_coords, pred_coords):
        ctx = self.to_pred(self.enc(patches, vis_coords))
        q = self.mask_token.expand(patches.shape[0], N_PRED, -1)
        rq = rope_angles(pred_coords, DP // HP)
        rk = rope_angles(torch.cat([torch.zeros(patches.shape[0], R, 2), vis_coords], 1), DP // HP)
        for blk in self.pred:
            q = blk(q, rq, ctx, rk)
        w = self.head_g * self.head_v / self.head_v.norm(dim=1, keepdim=True)
        return F.normalize(Block.rms(q, torch.ones(DP)), dim=-1) @ w.t()


student = Student()
teacher = Encoder()
teacher.load_state_dict(student.enc.state_dict())
for p in teacher.parameters():
    p.requires_grad_(False)
protos = torch.nn.Linear(D, K)
opt = torch.optim.AdamW(student.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
opt_c = torch.optim.AdamW(protos.parameters(), lr=5e-4, betas=(0.9, 0.95), weight_decay=0.01)
grid = torch.stack(torch.meshgrid(torch.arange(G), torch.arange(G), indexing="ij"), -1).reshape(N, 2).float() / G


def step():
    patches = torch.randn(B, N, 3 * P * P)
    order = torch.rand(B, N).argsort(1)
    vis, pred = order[:, :N_VIS], order[:, N_VIS : N_VIS + N_PRED]
    take = lambda t, i: t.gather(1, i[..., None].expand(-1, -1, t.shape[-1]))
    coords = grid.expand(B, -1, -1)
    with torch.no_grad():
        t = teacher(patches, coords)[:, R:]  # [B, N, D]
    # Online clustering: logits, position-wise Sinkhorn-Knopp (3 iterations), clustering loss.
    logits = protos(F.normalize(t, dim=-1))  # [B, N, K]
    with torch.no_grad():
        q = torch.exp((logits - logits.amax(0, keepdim=True)) / 0.06)
        for _ in range(3):
            q = q / q.sum(0, keepdim=True)
            q = q / q.sum(-1, keepdim=True)
    loss_c = -(q * F.log_softmax(logits / 0.12, -1)).sum(-1).mean()
    out = student(take(patches, vis), take(coords, vis), take(coords, pred))
    loss = -(take(q, pred) * F.log_softmax(out / 0.12, -1)).sum(-1).mean()
    opt.zero_grad()
    opt_c.zero_grad()
    (loss + loss_c).backward()
    opt.step()
    opt_c.step()
    with torch.no_grad():
        for pt, ps in zip(teacher.parameters(), student.enc.parameters()):
            pt.mul_(0.998).add_(ps, alpha=0.002)


if cfg.get("forwardOnly"):
    # Frozen feature extraction (bench:vitl --compare): the encoder on all patches, no gradient.
    def step():  # noqa: F811
        with torch.no_grad():
            teacher(torch.randn(B, N, 3 * P * P), grid.expand(B, -1, -1))


steps = cfg.get("benchSteps", 5)
for _ in range(2 if not cfg.get("forwardOnly") else 1):
    step()
sync()
t0 = time.perf_counter()
for _ in range(steps):
    step()
sync()
sec = time.perf_counter() - t0
print(json.dumps({"imagesPerSec": B * steps / sec, "torch": torch.__version__, "threads": torch.get_num_threads(), "device": DEVICE}))
