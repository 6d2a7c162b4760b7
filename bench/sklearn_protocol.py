"""The protocol of `npm run bench:eval -- --features DIR` in scikit-learn, on the same .npy arrays,
to time our logistic regression and k-NN against the usual peer on this CPU.

Logistic regression: multinomial L-BFGS with scikit-learn's C, the reference grid (8 values
log-spaced in [1e-6, 1e5]), selection on a seeded 10% of the training rows, refit on all of them,
test accuracy. k-NN: k in 1, 3, 10, 30 x cosine / L2 (majority vote), the same selection and refit.

usage: /usr/bin/python3 bench/sklearn_protocol.py DIR [MAX_ITER] [THREADS] [both|logreg|knn]
"""
import os
import sys
import time

threads = sys.argv[3] if len(sys.argv) > 3 else "2"
os.environ.setdefault("OMP_NUM_THREADS", threads)
os.environ.setdefault("OPENBLAS_NUM_THREADS", threads)
import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402

d = sys.argv[1]
max_iter = int(sys.argv[2]) if len(sys.argv) > 2 else 100
xtr, ytr = np.load(f"{d}/train_features.npy"), np.load(f"{d}/train_labels.npy")
xte, yte = np.load(f"{d}/test_features.npy"), np.load(f"{d}/test_labels.npy")
perm = np.random.default_rng(0).permutation(len(ytr))
val, tr = perm[: len(ytr) // 10], perm[len(ytr) // 10 :]


def select_refit(grid, make):
    scores = [make(p).fit(xtr[tr], ytr[tr]).score(xtr[val], ytr[val]) for p in grid]
    best = grid[int(np.argmax(scores))]
    return best, make(best).fit(xtr, ytr).score(xte, yte)


which = sys.argv[4] if len(sys.argv) > 4 else "both"
print(f"features: {len(ytr)} x {xtr.shape[1]} train, {len(yte)} test ({d})")

if which in ("both", "logreg"):
    t0 = time.perf_counter()
    cs = list(np.logspace(-6, 5, 8))
    best, acc = select_refit(cs, lambda c: LogisticRegression(C=c, max_iter=max_iter, tol=1e-6))
    print(f"sklearn logistic regression seconds: {time.perf_counter() - t0:.1f}; chose C={best:.3e}; test accuracy: {100 * acc:.2f}")
if which in ("both", "knn"):
    t0 = time.perf_counter()
    grid = [(k, m) for m in ("cosine", "euclidean") for k in (1, 3, 10, 30)]
    best, acc = select_refit(grid, lambda p: KNeighborsClassifier(n_neighbors=p[0], metric=p[1], algorithm="brute", n_jobs=int(threads)))
    print(f"sklearn k-NN seconds: {time.perf_counter() - t0:.1f}; chose k={best[0]} {best[1]}; test accuracy: {100 * acc:.2f}")
