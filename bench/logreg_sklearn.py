"""Our dense logistic regression against scikit-learn's, fitted to convergence in float64 on the very
same rows: the splits an evaluation wrote with `npm run eval -- ... --probes logreg --dense-engine
tfjs --save-splits DIR` (src/segmentation/save-splits.ts), and optionally that evaluation's result
JSON, whose per-C validation scores and refit it prints beside scikit-learn's.

For each C asked (indices into the reference grid, default all 8): validation mIoU of a fit on the
90% split's training rows; then the refit on all training rows at the chosen C (or --refit C
indices): test mIoU and the scaled objective (mean cross-entropy + ||W||^2 / (2 C n), the objective
our L-BFGS reports). mIoU as src/segmentation/metrics.ts: one class per patch replicated to its
pixels, ignored labels removed, the mean over labels present in ground truth or predictions.

usage: /usr/bin/python3 bench/logreg_sklearn.py SPLITS_DIR [--result RESULT.json] [--c 3,4,5] [--refit 4,5]
       [--tol 1e-8] [--threads 2]
(Debian: apt install python3-sklearn; a fit of 65k rows x 128 at tol 1e-8 takes ~2.5 min on 2 cores.)
"""
import argparse
import json
import os
import time
import warnings

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("splits")
p.add_argument("--result", default="")
p.add_argument("--c", default="0,1,2,3,4,5,6,7")
p.add_argument("--refit", default="", help="C indices to refit on all training rows; default: the best of --c on validation")
p.add_argument("--tol", type=float, default=1e-8)
p.add_argument("--threads", default="2")
a = p.parse_args()
os.environ.setdefault("OMP_NUM_THREADS", a.threads)
os.environ.setdefault("OPENBLAS_NUM_THREADS", a.threads)
import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

meta = json.load(open(f"{a.splits}/meta.json"))
grid = meta["logregC"]
ignore = set(meta["ignore"])
load = lambda name: np.load(f"{a.splits}/{name}.npy")  # noqa: E731


def miou(pixels, patch_pred):
    gt = pixels.ravel()
    pred = np.repeat(patch_pred, pixels.shape[1])
    keep = ~np.isin(gt, list(ignore))
    g, q = gt[keep], pred[keep]
    ious = []
    for c in np.union1d(np.unique(g), np.unique(q)):
        tp = np.sum((g == c) & (q == c))
        ious.append(tp / (np.sum(g == c) + np.sum(q == c) - tp))
    return 100 * float(np.mean(ious))


def fit(x, y, c):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m = LogisticRegression(C=c, max_iter=100_000, tol=a.tol).fit(x, y)
    return m, len(w) > 0


def scaled_objective(m, x, y, c):
    z = x @ m.coef_.T + m.intercept_
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    ce = -logp[np.arange(len(y)), np.searchsorted(m.classes_, y)].mean()
    return ce + 0.5 * float((m.coef_**2).sum()) / (c * len(y))


ours = {}
if a.result:
    r = json.load(open(a.result))["details"]["seg.logreg"]
    ours = {"validation": {v["point"]: 100 * v["score"] for v in r["validation"]}, "refit": r["refit"], "best": r["best"]}
    print(f"ours ({a.result}): chose C={r['best']:.3e}; refit {r['refit']}")

train_x = load("train_features")[load("train_rows")].astype(np.float64)
train_y = load("train_modes")
val_x, val_px = load("val_features").astype(np.float64), load("val_pixels")
print(f"rows: {len(train_y)} training x {meta['dim']}, {len(val_px)} validation patches; tol {a.tol}")
scores = {}
for i in [int(v) for v in a.c.split(",")]:
    c = grid[i]
    t0 = time.perf_counter()
    m, warned = fit(train_x, train_y, c)
    scores[i] = miou(val_px, m.predict(val_x))
    theirs = ours.get("validation", {}).get(c)
    beside = f"; ours {theirs:.3f}" if theirs is not None else ""
    note = " (did not converge)" if warned else ""
    print(f"C={c:.3e} validation mIoU {scores[i]:.3f}{beside}; {m.n_iter_[0]} iterations{note}, {time.perf_counter() - t0:.0f} s", flush=True)

refit = [int(v) for v in a.refit.split(",")] if a.refit else [max(scores, key=lambda i: (scores[i], -i))]
all_x = load("all_features")[load("all_rows")].astype(np.float64)
all_y = load("all_modes")
test_x, test_px = load("test_features").astype(np.float64), load("test_pixels")
for i in refit:
    c = grid[i]
    t0 = time.perf_counter()
    m, warned = fit(all_x, all_y, c)
    obj = scaled_objective(m, all_x, all_y, c)
    mine = ours.get("refit")
    beside = f"; ours (C={mine['c']:.3e}) objective {mine['loss']:.8f}" if mine else ""
    note = " (did not converge)" if warned else ""
    print(
        f"refit C={c:.3e}: test mIoU {miou(test_px, m.predict(test_x)):.3f}, scaled objective {obj:.8f}{beside}; "
        f"{m.n_iter_[0]} iterations{note}, {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
