/*
 * capi-native: float32 matrix products for the tfjs wasm backend, computed by OpenBLAS in place
 * on the wasm heap (zero copy: the arguments are typed-array views of the heap, and N-API gives
 * their data pointers). Plain N-API (node_api.h from the Node headers), so nothing is downloaded.
 */
#include <cblas.h>
#include <math.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#define CHECK(call)                                               \
  do {                                                            \
    if ((call) != napi_ok) {                                      \
      napi_throw_error(env, NULL, "capi-native: " #call " failed"); \
      return NULL;                                                \
    }                                                             \
  } while (0)

/* The float32 data of a Float32Array argument, and its length in elements. */
static float *f32(napi_env env, napi_value v, size_t *length) {
  napi_typedarray_type type;
  void *data;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, length, &data, &buffer, &offset) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "capi-native: expected a Float32Array");
    return NULL;
  }
  return (float *)data;
}

static bool i64(napi_env env, napi_value v, int64_t *out) { return napi_get_value_int64(env, v, out) == napi_ok; }

/*
 * Denormal floats (|x| < 1.2e-38) make x86 cores take a microcode assist per operation: an sgemm
 * whose operand holds them ran 76-85x slower on a Xeon than on normal ones (bench/denormals.ts),
 * and probe gradients hold them (softmax probabilities of confident logits underflow). Products
 * run with flush-to-zero and denormals-are-zero, then the caller's mode comes back (JS numbers
 * keep IEEE semantics). OpenBLAS's workers keep their own mode (Debian's build does not pass the
 * caller's: setting it here alone changed nothing), so capi-native creates them again under it
 * (setThreads, below).
 */
static unsigned flush_denormals(void) {
#if defined(__x86_64__) || defined(__i386__)
  unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040); /* FTZ (bit 15) | DAZ (bit 6) */
  return csr;
#else
  return 0;
#endif
}

static void restore_csr(unsigned csr) {
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr(csr);
#else
  (void)csr;
#endif
}

/*
 * sgemm(a, b, c, batch, m, n, k, transA, transB, strideA, strideB): for each i < batch,
 * c[i] = op(a[i]) op(b[i]) with c[i] of m x n, row-major; op() transposes when asked;
 * strideA / strideB are the element strides between batch items (0 broadcasts one matrix).
 */
static napi_value Sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 11) {
    napi_throw_error(env, NULL, "capi-native: sgemm takes 11 arguments");
    return NULL;
  }
  size_t la, lb, lc;
  float *a = f32(env, argv[0], &la), *b = f32(env, argv[1], &lb), *c = f32(env, argv[2], &lc);
  if (!a || !b || !c) return NULL;
  int64_t batch, m, n, k, sa, sb;
  bool ta, tb;
  if (!i64(env, argv[3], &batch) || !i64(env, argv[4], &m) || !i64(env, argv[5], &n) || !i64(env, argv[6], &k) ||
      napi_get_value_bool(env, argv[7], &ta) != napi_ok || napi_get_value_bool(env, argv[8], &tb) != napi_ok ||
      !i64(env, argv[9], &sa) || !i64(env, argv[10], &sb)) {
    napi_throw_type_error(env, NULL, "capi-native: sgemm: bad argument types");
    return NULL;
  }
  if (batch < 0 || m < 0 || n < 0 || k < 0 || (size_t)(batch * m * n) > lc || (batch > 0 && (size_t)((batch - 1) * sa + m * k) > la) ||
      (batch > 0 && (size_t)((batch - 1) * sb + k * n) > lb)) {
    napi_throw_range_error(env, NULL, "capi-native: sgemm: sizes exceed the arrays");
    return NULL;
  }
  unsigned csr = flush_denormals();
  for (int64_t i = 0; i < batch; i++) {
    float *ci = c + i * m * n;
    if (k == 0) {
      for (int64_t j = 0; j < m * n; j++) ci[j] = 0.0f;
      continue;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, 1.0f,
                a + i * sa, ta ? (blasint)m : (blasint)k, b + i * sb, tb ? (blasint)k : (blasint)n, 0.0f, ci, (blasint)n);
  }
  restore_csr(csr);
  return NULL;
}

/*
 * unary(op, x, y): y = f(x) elementwise, f = erf (0), exp (1), sin (2), cos (3). Built with
 * -ffast-math -march=native so gcc calls glibc's vector versions (libmvec, AVX2/AVX-512) on
 * whole registers; the wasm kernels are scalar. One thread: these are memory-bound.
 */
static napi_value Unary(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t op;
  size_t nx, ny;
  if (argc != 3 || !i64(env, argv[0], &op)) {
    napi_throw_type_error(env, NULL, "capi-native: unary(op, x, y)");
    return NULL;
  }
  const float *x = f32(env, argv[1], &nx);
  float *y = f32(env, argv[2], &ny);
  if (!x || !y) return NULL;
  if (ny < nx) {
    napi_throw_range_error(env, NULL, "capi-native: unary: output shorter than input");
    return NULL;
  }
  switch (op) {
    case 0:
      for (size_t i = 0; i < nx; i++) y[i] = erff(x[i]);
      break;
    case 1:
      for (size_t i = 0; i < nx; i++) y[i] = expf(x[i]);
      break;
    case 2:
      for (size_t i = 0; i < nx; i++) y[i] = sinf(x[i]);
      break;
    case 3:
      for (size_t i = 0; i < nx; i++) y[i] = cosf(x[i]);
      break;
    default:
      napi_throw_range_error(env, NULL, "capi-native: unary: unknown op");
      return NULL;
  }
  return NULL;
}

/*
 * gelu(x, y): y = 0.5 x (1 + erf(x / sqrt 2)) (exact GELU) in one vectorised pass;
 * geluGrad(x, dy, dx): dx = dy (0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)).
 * The tfjs forms are 5 element-wise kernels forward and ~8 backward, each a pass over memory.
 */
static napi_value Gelu(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  size_t nx, ny;
  if (argc != 2) {
    napi_throw_type_error(env, NULL, "capi-native: gelu(x, y)");
    return NULL;
  }
  const float *x = f32(env, argv[0], &nx);
  float *y = f32(env, argv[1], &ny);
  if (!x || !y) return NULL;
  if (ny < nx) {
    napi_throw_range_error(env, NULL, "capi-native: gelu: output shorter than input");
    return NULL;
  }
  for (size_t i = 0; i < nx; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
  return NULL;
}

static napi_value GeluGrad(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  size_t nx, ndy, ndx;
  if (argc != 3) {
    napi_throw_type_error(env, NULL, "capi-native: geluGrad(x, dy, dx)");
    return NULL;
  }
  const float *x = f32(env, argv[0], &nx);
  const float *dy = f32(env, argv[1], &ndy);
  float *dx = f32(env, argv[2], &ndx);
  if (!x || !dy || !dx) return NULL;
  if (ndy < nx || ndx < nx) {
    napi_throw_range_error(env, NULL, "capi-native: geluGrad: arrays of different lengths");
    return NULL;
  }
  const float inv_sqrt_2pi = 0.3989422804014327f;
  for (size_t i = 0; i < nx; i++) {
    const float v = x[i];
    dx[i] = dy[i] * (0.5f * (1.0f + erff(v * 0.70710678118654752f)) + v * inv_sqrt_2pi * expf(-0.5f * v * v));
  }
  return NULL;
}

/* ---- Dense-protocol kernels (eval spec 3): on plain Float32Arrays, off the wasm heap ---- */

static double *f64(napi_env env, napi_value v, size_t *length) {
  napi_typedarray_type type;
  void *data;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, length, &data, &buffer, &offset) != napi_ok || type != napi_float64_array) {
    napi_throw_type_error(env, NULL, "capi-native: expected a Float64Array");
    return NULL;
  }
  return (double *)data;
}

static int32_t *i32(napi_env env, napi_value v, size_t *length) {
  napi_typedarray_type type;
  void *data;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, length, &data, &buffer, &offset) != napi_ok || type != napi_int32_array) {
    napi_throw_type_error(env, NULL, "capi-native: expected an Int32Array");
    return NULL;
  }
  return (int32_t *)data;
}

/*
 * topkMerge(scores, m, n, colAdd, base, k, vals, idx): for each row i of scores [m, n] (plus
 * colAdd[j] when colAdd has n entries), merges the columns into row i's k best so far (vals [m, k]
 * descending, idx the matching base + j; empty slots hold -Infinity). One comparison per score
 * against the current k-th best: the cost is the sgemm's, not the selection's.
 */
static napi_value TopkMerge(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  size_t ls, la, lv, li;
  int64_t m, n, base, k;
  if (argc != 8 || !i64(env, argv[1], &m) || !i64(env, argv[2], &n) || !i64(env, argv[4], &base) || !i64(env, argv[5], &k)) {
    napi_throw_type_error(env, NULL, "capi-native: topkMerge(scores, m, n, colAdd, base, k, vals, idx)");
    return NULL;
  }
  const float *scores = f32(env, argv[0], &ls);
  const float *add = f32(env, argv[3], &la); /* an empty colAdd (no offsets) may have no data pointer */
  float *vals = f32(env, argv[6], &lv);
  int32_t *idx = i32(env, argv[7], &li);
  bool pending;
  CHECK(napi_is_exception_pending(env, &pending));
  if (pending || !scores || !vals || !idx || (la > 0 && !add)) return NULL;
  if ((size_t)(m * n) > ls || (size_t)(m * k) > lv || (size_t)(m * k) > li || (la != 0 && la < (size_t)n) || k < 1) {
    napi_throw_range_error(env, NULL, "capi-native: topkMerge: sizes exceed the arrays");
    return NULL;
  }
  for (int64_t i = 0; i < m; i++) {
    const float *row = scores + i * n;
    float *v = vals + i * k;
    int32_t *x = idx + i * k;
    for (int64_t j = 0; j < n; j++) {
      const float s = la ? row[j] + add[j] : row[j];
      if (!(s > v[k - 1])) continue;
      int64_t p = k - 1;
      while (p > 0 && s > v[p - 1]) {
        v[p] = v[p - 1];
        x[p] = x[p - 1];
        p--;
      }
      v[p] = s;
      x[p] = (int32_t)(base + j);
    }
  }
  return NULL;
}

/*
 * softmaxXent(logits, labels, n, c, bias, colSum): for rows i < n of logits [n, c], adds bias
 * (length c; empty: none) to the row, replaces it by softmax(row) - onehot(labels[i]) (the
 * cross-entropy's gradient), adds the row to colSum (length c, float64; empty: none: the bias's
 * gradient) and returns sum_i CE_i, in float64 (the sum over millions of rows must not drown in
 * float32 rounding).
 */
static napi_value SoftmaxXent(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  size_t ll, lb, lbias, lsum;
  int64_t n, c;
  if (argc != 6 || !i64(env, argv[2], &n) || !i64(env, argv[3], &c)) {
    napi_throw_type_error(env, NULL, "capi-native: softmaxXent(logits, labels, n, c, bias, colSum)");
    return NULL;
  }
  float *logits = f32(env, argv[0], &ll);
  const int32_t *labels = i32(env, argv[1], &lb);
  if (!logits || !labels) return NULL;
  /* bias and colSum may be empty (none), whose data pointer can be NULL: only a thrown type error stops here. */
  const float *bias = f32(env, argv[4], &lbias);
  double *colSum = f64(env, argv[5], &lsum);
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return NULL;
  if ((size_t)(n * c) > ll || (size_t)n > lb || (lbias && lbias < (size_t)c) || (lsum && lsum < (size_t)c)) {
    napi_throw_range_error(env, NULL, "capi-native: softmaxXent: sizes exceed the arrays");
    return NULL;
  }
  double loss = 0;
  for (int64_t i = 0; i < n; i++) {
    float *row = logits + i * c;
    if (lbias)
      for (int64_t j = 0; j < c; j++) row[j] += bias[j];
    float mx = row[0];
    for (int64_t j = 1; j < c; j++) mx = row[j] > mx ? row[j] : mx;
    const int32_t y = labels[i];
    const double target = (double)row[y] - mx; /* log-softmax from the logit: no log(0) when p underflows */
    double sum = 0;
    for (int64_t j = 0; j < c; j++) {
      row[j] = expf(row[j] - mx);
      sum += row[j];
    }
    loss += log(sum) - target;
    const float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < c; j++) row[j] *= inv;
    row[y] -= 1.0f;
    if (lsum)
      for (int64_t j = 0; j < c; j++) colSum[j] += row[j];
  }
  napi_value out;
  CHECK(napi_create_double(env, loss, &out));
  return out;
}

/* colMoments(x, n, d, sum, sumSq): adds each column's sum and sum of squares over rows < n of x [n, d] (float64). */
static napi_value ColMoments(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  size_t lx, ls, lq;
  int64_t n, d;
  if (argc != 5 || !i64(env, argv[1], &n) || !i64(env, argv[2], &d)) {
    napi_throw_type_error(env, NULL, "capi-native: colMoments(x, n, d, sum, sumSq)");
    return NULL;
  }
  const float *x = f32(env, argv[0], &lx);
  double *sum = f64(env, argv[3], &ls), *sq = f64(env, argv[4], &lq);
  if (!x || !sum || !sq) return NULL;
  if ((size_t)(n * d) > lx || (size_t)d > ls || (size_t)d > lq) {
    napi_throw_range_error(env, NULL, "capi-native: colMoments: sizes exceed the arrays");
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) {
    const float *row = x + i * d;
    for (int64_t j = 0; j < d; j++) {
      const double v = row[j];
      sum[j] += v;
      sq[j] += v * v;
    }
  }
  return NULL;
}

/*
 * affineRows(x, n, d, shift, scale, normalize): x[i, j] = (x[i, j] - shift[j]) * scale[j] in place
 * for rows < n; then, with normalize, each row divided by its l2 norm (cosine k-NN; no epsilon, as
 * the reference).
 */
static napi_value AffineRows(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  size_t lx, lsh, lsc;
  int64_t n, d;
  bool normalize;
  if (argc != 6 || !i64(env, argv[1], &n) || !i64(env, argv[2], &d) || napi_get_value_bool(env, argv[5], &normalize) != napi_ok) {
    napi_throw_type_error(env, NULL, "capi-native: affineRows(x, n, d, shift, scale, normalize)");
    return NULL;
  }
  float *x = f32(env, argv[0], &lx);
  const float *shift = f32(env, argv[3], &lsh), *scale = f32(env, argv[4], &lsc);
  if (!x || !shift || !scale) return NULL;
  if ((size_t)(n * d) > lx || (size_t)d > lsh || (size_t)d > lsc) {
    napi_throw_range_error(env, NULL, "capi-native: affineRows: sizes exceed the arrays");
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) {
    float *row = x + i * d;
    double sq = 0;
    for (int64_t j = 0; j < d; j++) {
      row[j] = (row[j] - shift[j]) * scale[j];
      sq += (double)row[j] * row[j];
    }
    if (normalize) {
      const float inv = (float)(1.0 / sqrt(sq));
      for (int64_t j = 0; j < d; j++) row[j] *= inv;
    }
  }
  return NULL;
}

/* rowSqNorms(x, n, d, out): out[i] = -|x_i|^2 (the L2 k-NN's column offset: 2 q.x - |x|^2 ranks like -|q - x|^2). */
static napi_value RowSqNorms(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  size_t lx, lo;
  int64_t n, d;
  if (argc != 4 || !i64(env, argv[1], &n) || !i64(env, argv[2], &d)) {
    napi_throw_type_error(env, NULL, "capi-native: rowSqNorms(x, n, d, out)");
    return NULL;
  }
  const float *x = f32(env, argv[0], &lx);
  float *out = f32(env, argv[3], &lo);
  if (!x || !out) return NULL;
  if ((size_t)(n * d) > lx || (size_t)n > lo) {
    napi_throw_range_error(env, NULL, "capi-native: rowSqNorms: sizes exceed the arrays");
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) {
    const float *row = x + i * d;
    float sq = 0;
    for (int64_t j = 0; j < d; j++) sq += row[j] * row[j];
    out[i] = -sq;
  }
  return NULL;
}

/* OpenBLAS internals (exported by its pthread and OpenMP builds; not in cblas.h). */
extern int blas_thread_shutdown_(void) __attribute__((weak));
extern int blas_thread_init(void) __attribute__((weak));

static napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t n;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1 || !i64(env, argv[0], &n) || n < 1) {
    napi_throw_type_error(env, NULL, "capi-native: setThreads takes a positive integer");
    return NULL;
  }
  // The workers are created again from this thread while it flushes denormals, so they inherit
  // the mode (a new thread copies its creator's MXCSR). Weak: OpenBLAS builds without these
  // internals keep their workers as they are.
  unsigned csr = flush_denormals();
  openblas_set_num_threads((int)n);
  if (blas_thread_shutdown_ && blas_thread_init) {
    blas_thread_shutdown_();
    blas_thread_init();
  }
  restore_csr(csr);
  return NULL;
}

static napi_value GetThreads(napi_env env, napi_callback_info info) {
  napi_value out;
  CHECK(napi_create_int32(env, openblas_get_num_threads(), &out));
  return out;
}

/* The kernel set OpenBLAS's DYNAMIC_ARCH chose at load ("SkylakeX", "Haswell", "Prescott", ...). */
static napi_value CoreName(napi_env env, napi_callback_info info) {
  napi_value out;
  CHECK(napi_create_string_utf8(env, openblas_get_corename(), NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sgemm", NULL, Sgemm, NULL, NULL, NULL, napi_default, NULL},
      {"unary", NULL, Unary, NULL, NULL, NULL, napi_default, NULL},
      {"gelu", NULL, Gelu, NULL, NULL, NULL, napi_default, NULL},
      {"geluGrad", NULL, GeluGrad, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"getThreads", NULL, GetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"coreName", NULL, CoreName, NULL, NULL, NULL, napi_default, NULL},
      {"topkMerge", NULL, TopkMerge, NULL, NULL, NULL, napi_default, NULL},
      {"softmaxXent", NULL, SoftmaxXent, NULL, NULL, NULL, napi_default, NULL},
      {"colMoments", NULL, ColMoments, NULL, NULL, NULL, napi_default, NULL},
      {"affineRows", NULL, AffineRows, NULL, NULL, NULL, napi_default, NULL},
      {"rowSqNorms", NULL, RowSqNorms, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
