/* One decoding step of a Llama model with int8 weights, for B sequences at once, in one call.
 *
 * Why: at 135M parameters a token's arithmetic is small; in PyTorch most of a step is spent
 * dispatching ~40 small operations per layer and in fbgemm's per-call packing, not in reading
 * the weights, which is what bounds decoding (app/native/__init__.py says how it is built and
 * loaded; app/decoder.py when it is used). Here the whole step is one C call.
 *
 * The arithmetic of the matrix products is fbgemm's dynamic quantisation (what PyTorch's
 * quantize_dynamic runs), so the logits equal PyTorch's up to float rounding:
 *   - the activations of a product (all B rows together) are quantised to uint8 with one scale
 *     and zero point from their min and max, range 0..127 (reduce_range), rounded as fbgemm does;
 *   - the weights are the same int8 values with one scale per output row (symmetric);
 *   - out[b][n] = (float)(sum_k xq[b][k] * w[n][k] - zp * rowsum[n]) * x_scale * w_scale[n].
 * The uint8 x int8 products use AVX2's maddubs, whose pairs of products saturate at 16 bits: the
 * activations are at most 128 (127, plus the zero point's rounding), so a pair stays within
 * -32768..32512 and the integer sums are exact.
 *
 * Everything else (RMS norm, rotary embedding, attention over the float32 key/value cache, SiLU)
 * is float32. Keys and values go into the cache the Python side allocated and prefilled.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    const int8_t *w;      /* [rows, cols], row-major */
    const float *scale;   /* [rows] */
    int32_t *row_sum;     /* [rows], sum over cols of w (owned) */
    int rows, cols;
} QMat;

typedef struct {
    int layers, hidden, heads, kv_heads, head_dim, inter, vocab, max_len, seqs, max_batch, threads;
    float eps;
    const float *embed;         /* [vocab, hidden] */
    const float *cos, *sin;     /* [max_len, head_dim] */
    const float *final_norm;    /* [hidden] */
    float *keys, *values;       /* [layers, seqs, kv_heads, max_len, head_dim] */
    const float **ln1, **ln2;   /* per layer [hidden] */
    QMat *qkv, *o, *gate_up, *down;  /* per layer */
    QMat lm_head;
    /* scratch, sized for max_batch rows */
    float *x, *h, *qkv_out, *attn, *gu, *act, *scores;
    uint8_t *xq;
} Model;

/* ---- quantised matrix product ------------------------------------------------------------------ */

static void qmat_init(QMat *m, const int8_t *w, const float *scale, int rows, int cols) {
    m->w = w;
    m->scale = scale;
    m->rows = rows;
    m->cols = cols;
    m->row_sum = (int32_t *)malloc(sizeof(int32_t) * (size_t)rows);
    for (int n = 0; n < rows; n++) {
        int32_t s = 0;
        for (int k = 0; k < cols; k++) s += w[(size_t)n * cols + k];
        m->row_sum[n] = s;
    }
}

/* PyTorch's ChooseQuantizationParams for uint8 with reduce_range (qmin 0, qmax 127). */
static void choose_qparams(float lo, float hi, float *scale_out, int32_t *zp_out) {
    const int32_t qmin = 0, qmax = 127;
    lo = lo < 0.f ? lo : 0.f;
    hi = hi > 0.f ? hi : 0.f;
    double scale = ((double)hi - lo) / (qmax - qmin);
    if ((float)scale == 0.0f || isinf(1.0f / (float)scale)) scale = 0.1;
    const float small = 6.1e-5f;
    if (scale < small) {
        float org = (float)scale;
        scale = small;
        if (lo == 0.0f) {
            hi = small * (qmax - qmin);
        } else if (hi == 0.0f) {
            lo = -small * (qmax - qmin);
        } else {
            float amp = small / org;
            lo *= amp;
            hi *= amp;
        }
    }
    double zp_min = qmin - lo / scale, zp_max = qmax - hi / scale;
    double err_min = fabs((double)qmin) - fabs(lo / scale), err_max = fabs((double)qmax) - fabs(hi / scale);
    double zp0 = err_min < err_max ? zp_min : zp_max;
    int32_t zp = zp0 < qmin ? qmin : zp0 > qmax ? qmax : (int32_t)nearbyint(zp0);
    *scale_out = (float)scale;
    *zp_out = zp;
}

/* Quantise x [len] as fbgemm's QuantizeAvx2 (LEGACY): round(x * (1/scale) + zp) clipped to 0..255. */
static void quantize(const float *x, uint8_t *out, int len, float scale, int32_t zp) {
    float inv = 1.0f / scale;
    int i = 0;
#ifdef __AVX2__
    __m256 inv_v = _mm256_set1_ps(inv), zp_v = _mm256_set1_ps((float)zp), big = _mm256_set1_ps(2147483520.0f);
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_set1_epi32(255);
    for (; i + 8 <= len; i += 8) {
        __m256 t = _mm256_min_ps(_mm256_fmadd_ps(_mm256_loadu_ps(x + i), inv_v, zp_v), big);
        __m256i r = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(t), lo), hi);
        int32_t tmp[8];
        _mm256_storeu_si256((__m256i *)tmp, r);
        for (int j = 0; j < 8; j++) out[i + j] = (uint8_t)tmp[j];
    }
#endif
    for (; i < len; i++) {
        float t = fmaf(x[i], inv, (float)zp);
        t = t < 0.f ? 0.f : t > 255.f ? 255.f : t;
        out[i] = (uint8_t)nearbyintf(t);
    }
}

#ifdef __AVX2__
/* 8 lanes of 32-bit sums -> their total */
static inline int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* acc + the products of 32 activations and weights, summed in pairs of pairs into 8 lanes */
static inline __m256i madd_u8s8(__m256i acc, __m256i a, __m256i w) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, w), _mm256_set1_epi16(1)));
}
#endif

/* sum_k a[k] * w[k]. The next rows' weights are prefetched: measured here, a row at a time with a
   prefetch 1 kB ahead read 14-18 GB/s on one core, without it 11-16 GB/s; four rows at once 8-10 GB/s. */
static inline int32_t dot_u8s8(const uint8_t *a, const int8_t *w, int len) {
    int k = 0;
    int32_t sum = 0;
#ifdef __AVX2__
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
    for (; k + 64 <= len; k += 64) {
        _mm_prefetch((const char *)(w + k + 1024), _MM_HINT_T0);
        _mm_prefetch((const char *)(w + k + 1024 + 32), _MM_HINT_T0);
        acc0 = madd_u8s8(acc0, _mm256_loadu_si256((const __m256i *)(a + k)), _mm256_loadu_si256((const __m256i *)(w + k)));
        acc1 = madd_u8s8(acc1, _mm256_loadu_si256((const __m256i *)(a + k + 32)),
                         _mm256_loadu_si256((const __m256i *)(w + k + 32)));
    }
    for (; k + 32 <= len; k += 32)
        acc0 = madd_u8s8(acc0, _mm256_loadu_si256((const __m256i *)(a + k)), _mm256_loadu_si256((const __m256i *)(w + k)));
    sum = hsum_i32(_mm256_add_epi32(acc0, acc1));
#endif
    for (; k < len; k++) sum += (int32_t)a[k] * w[k];
    return sum;
}

/* out[b][n] for b < B: x [B, cols] float -> out [B, rows]; the weights are read once for all B. */
static void qmatmul(const Model *md, const QMat *m, const float *x, int B, float *out, uint8_t *xq) {
    int total = B * m->cols;
    float lo = x[0], hi = x[0];
    for (int i = 1; i < total; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    float scale;
    int32_t zp;
    choose_qparams(lo, hi, &scale, &zp);
    quantize(x, xq, total, scale, zp);
    const int cols = m->cols, rows = m->rows;
#pragma omp parallel for schedule(static) num_threads(md->threads) if (md->threads > 1 && rows >= 256)
    for (int n = 0; n < rows; n++) {
        const int8_t *w = m->w + (size_t)n * cols;
        for (int b = 0; b < B; b++) {
            int32_t acc = dot_u8s8(xq + (size_t)b * cols, w, cols) - zp * m->row_sum[n];
            out[(size_t)b * rows + n] = (float)acc * scale * m->scale[n];
        }
    }
}

/* ---- float parts ------------------------------------------------------------------------------- */

static inline float dot_f32(const float *a, const float *b, int len) {
    int i = 0;
    float sum = 0.f;
#ifdef __AVX2__
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= len; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
    sum = _mm_cvtss_f32(s);
#endif
    for (; i < len; i++) sum += a[i] * b[i];
    return sum;
}

static inline void axpy(float *y, float a, const float *x, int len) {
    int i = 0;
#ifdef __AVX2__
    __m256 av = _mm256_set1_ps(a);
    for (; i + 8 <= len; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
    for (; i < len; i++) y[i] += a * x[i];
}

/* e^x for 8 lanes (Cephes' polynomial, ~2 ulp; PyTorch's vectorised exp is of the same kind) */
#ifdef __AVX2__
static inline __m256 exp_ps(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3365f)), _mm256_set1_ps(88.3762626647949f));
    __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}
#endif

/* p = softmax(p) over len, in place */
static void softmax(float *p, int len) {
    float top = -INFINITY, total = 0.f;
    for (int t = 0; t < len; t++) top = p[t] > top ? p[t] : top;
    int t = 0;
#ifdef __AVX2__
    __m256 top_v = _mm256_set1_ps(top), sum_v = _mm256_setzero_ps();
    for (; t + 8 <= len; t += 8) {
        __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(p + t), top_v));
        _mm256_storeu_ps(p + t, e);
        sum_v = _mm256_add_ps(sum_v, e);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, sum_v);
    for (int i = 0; i < 8; i++) total += lanes[i];
#endif
    for (; t < len; t++) {
        p[t] = expf(p[t] - top);
        total += p[t];
    }
    float inv = 1.0f / total;
    for (t = 0; t < len; t++) p[t] *= inv;
}

/* out = silu(gate) * up over len */
static void silu_mul(const float *gate, const float *up, float *out, int len) {
    int i = 0;
#ifdef __AVX2__
    __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= len; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
#endif
    for (; i < len; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* Attention of the query heads that share key/value head g (grouped-query attention) over one
   sequence's cache row up to pos (inclusive). They are done together: each key and value row is read
   once for the group, not once per query head. scores: group * (pos + 1) floats of scratch. */
static void attend_group(const Model *m, const float *q, const float *kc, const float *vc, int pos, int g,
                         float *out, float *scores) {
    const int D = m->head_dim, group = m->heads / m->kv_heads, len = pos + 1;
    const float att_scale = 1.0f / sqrtf((float)D);
    const float *kh = kc + (size_t)g * m->max_len * D, *vh = vc + (size_t)g * m->max_len * D;
    for (int t = 0; t < len; t++) {
        const float *k = kh + (size_t)t * D;
        for (int j = 0; j < group; j++) scores[(size_t)j * len + t] = dot_f32(q + (size_t)(g * group + j) * D, k, D) * att_scale;
    }
    for (int j = 0; j < group; j++) {
        softmax(scores + (size_t)j * len, len);
        memset(out + (size_t)(g * group + j) * D, 0, sizeof(float) * D);
    }
    for (int t = 0; t < len; t++) {
        const float *v = vh + (size_t)t * D;
        for (int j = 0; j < group; j++) axpy(out + (size_t)(g * group + j) * D, scores[(size_t)j * len + t], v, D);
    }
}

static void rms_norm(const float *x, const float *weight, float *out, int len, float eps) {
    double ss = 0.0;
    for (int i = 0; i < len; i++) ss += (double)x[i] * x[i];
    float r = 1.0f / sqrtf((float)(ss / len) + eps);
    for (int i = 0; i < len; i++) out[i] = (x[i] * r) * weight[i];
}

/* x * cos + rotate_half(x) * sin, in place, one head */
static void rotate(float *x, const float *cos, const float *sin, int dim) {
    int half = dim / 2;
    float tmp[512];
    memcpy(tmp, x, sizeof(float) * (size_t)dim);
    for (int i = 0; i < half; i++) x[i] = tmp[i] * cos[i] - tmp[i + half] * sin[i];
    for (int i = half; i < dim; i++) x[i] = tmp[i] * cos[i] + tmp[i - half] * sin[i];
}

/* ---- the model --------------------------------------------------------------------------------- */

void *sd_create(const int32_t *dims, float eps, const float *embed, const float *cos, const float *sin,
                const float *final_norm, float *keys, float *values, const void **layer_ptrs,
                const int8_t *lm_w, const float *lm_scale) {
    /* dims: layers, hidden, heads, kv_heads, head_dim, inter, vocab, max_len, seqs, max_batch, threads
       layer_ptrs, per layer: ln1, ln2, qkv_w, qkv_scale, o_w, o_scale, gate_up_w, gate_up_scale, down_w, down_scale */
    Model *m = (Model *)calloc(1, sizeof(Model));
    m->layers = dims[0]; m->hidden = dims[1]; m->heads = dims[2]; m->kv_heads = dims[3]; m->head_dim = dims[4];
    m->inter = dims[5]; m->vocab = dims[6]; m->max_len = dims[7]; m->seqs = dims[8]; m->max_batch = dims[9];
    m->threads = dims[10] > 0 ? dims[10] : 1;
    if (m->head_dim > 512 || m->heads % m->kv_heads) { free(m); return NULL; }
    m->eps = eps; m->embed = embed; m->cos = cos; m->sin = sin; m->final_norm = final_norm;
    m->keys = keys; m->values = values;
    int L = m->layers, H = m->hidden, D = m->head_dim;
    int qkv_rows = (m->heads + 2 * m->kv_heads) * D;
    m->ln1 = (const float **)malloc(sizeof(float *) * L);
    m->ln2 = (const float **)malloc(sizeof(float *) * L);
    m->qkv = (QMat *)calloc(L, sizeof(QMat)); m->o = (QMat *)calloc(L, sizeof(QMat));
    m->gate_up = (QMat *)calloc(L, sizeof(QMat)); m->down = (QMat *)calloc(L, sizeof(QMat));
    for (int i = 0; i < L; i++) {
        const void **p = layer_ptrs + (size_t)i * 10;
        m->ln1[i] = (const float *)p[0];
        m->ln2[i] = (const float *)p[1];
        qmat_init(&m->qkv[i], (const int8_t *)p[2], (const float *)p[3], qkv_rows, H);
        qmat_init(&m->o[i], (const int8_t *)p[4], (const float *)p[5], H, m->heads * D);
        qmat_init(&m->gate_up[i], (const int8_t *)p[6], (const float *)p[7], 2 * m->inter, H);
        qmat_init(&m->down[i], (const int8_t *)p[8], (const float *)p[9], H, m->inter);
    }
    qmat_init(&m->lm_head, lm_w, lm_scale, m->vocab, H);
    size_t Bn = (size_t)m->max_batch;
    m->x = (float *)malloc(sizeof(float) * Bn * H);
    m->h = (float *)malloc(sizeof(float) * Bn * H);
    m->qkv_out = (float *)malloc(sizeof(float) * Bn * qkv_rows);
    m->attn = (float *)malloc(sizeof(float) * Bn * m->heads * D);
    m->gu = (float *)malloc(sizeof(float) * Bn * 2 * m->inter);
    m->act = (float *)malloc(sizeof(float) * Bn * m->inter);
    m->scores = (float *)malloc(sizeof(float) * Bn * m->heads * (size_t)m->max_len);
    m->xq = (uint8_t *)malloc(Bn * (size_t)(m->inter > H ? m->inter : H) + 64);
    return m;
}

void sd_set_threads(void *handle, int threads) {
    if (handle) ((Model *)handle)->threads = threads > 0 ? threads : 1;
}

void sd_free(void *handle) {
    Model *m = (Model *)handle;
    if (!m) return;
    for (int i = 0; i < m->layers; i++) {
        free(m->qkv[i].row_sum); free(m->o[i].row_sum); free(m->gate_up[i].row_sum); free(m->down[i].row_sum);
    }
    free(m->lm_head.row_sum);
    free(m->ln1); free(m->ln2); free(m->qkv); free(m->o); free(m->gate_up); free(m->down);
    free(m->x); free(m->h); free(m->qkv_out); free(m->attn); free(m->gu); free(m->act); free(m->scores); free(m->xq);
    free(m);
}

/* One token for each of B sequences: tokens[b] at positions[b] of cache row slots[b]; logits [B, vocab].
   Returns 0, or -1 when an argument is out of range (nothing is written then). */
int sd_step(void *handle, int B, const int32_t *tokens, const int32_t *positions, const int32_t *slots,
            float *logits) {
    Model *m = (Model *)handle;
    if (!m || B < 1 || B > m->max_batch) return -1;
    for (int b = 0; b < B; b++) {
        if (tokens[b] < 0 || tokens[b] >= m->vocab || positions[b] < 0 || positions[b] >= m->max_len ||
            slots[b] < 0 || slots[b] >= m->seqs) return -1;
    }
    const int H = m->hidden, D = m->head_dim, NH = m->heads, KV = m->kv_heads, I = m->inter;
    const int qkv_rows = (NH + 2 * KV) * D;
    const size_t layer_stride = (size_t)m->seqs * KV * m->max_len * D;
    for (int b = 0; b < B; b++) memcpy(m->x + (size_t)b * H, m->embed + (size_t)tokens[b] * H, sizeof(float) * H);

    for (int l = 0; l < m->layers; l++) {
        /* attention half */
        for (int b = 0; b < B; b++) rms_norm(m->x + (size_t)b * H, m->ln1[l], m->h + (size_t)b * H, H, m->eps);
        qmatmul(m, &m->qkv[l], m->h, B, m->qkv_out, m->xq);
        for (int b = 0; b < B; b++) {
            float *q = m->qkv_out + (size_t)b * qkv_rows, *k = q + NH * D, *v = k + KV * D;
            int pos = positions[b];
            const float *c = m->cos + (size_t)pos * D, *s = m->sin + (size_t)pos * D;
            for (int hd = 0; hd < NH; hd++) rotate(q + hd * D, c, s, D);
            for (int hd = 0; hd < KV; hd++) rotate(k + hd * D, c, s, D);
            for (int hd = 0; hd < KV; hd++) {
                size_t at = l * layer_stride + (((size_t)slots[b] * KV + hd) * m->max_len + pos) * D;
                memcpy(m->keys + at, k + hd * D, sizeof(float) * D);
                memcpy(m->values + at, v + hd * D, sizeof(float) * D);
            }
        }
        /* every (sequence, key/value head) on its own: with 2 threads 3 groups split 2 + 1 */
#pragma omp parallel for schedule(dynamic, 1) num_threads(m->threads) if (m->threads > 1)
        for (int unit = 0; unit < B * KV; unit++) {
            int b = unit / KV, g = unit % KV;
            size_t row = l * layer_stride + (size_t)slots[b] * KV * m->max_len * D;
            attend_group(m, m->qkv_out + (size_t)b * qkv_rows, m->keys + row, m->values + row, positions[b], g,
                         m->attn + (size_t)b * NH * D, m->scores + (size_t)unit * (NH / KV) * m->max_len);
        }
        qmatmul(m, &m->o[l], m->attn, B, m->h, m->xq);
        for (size_t i = 0; i < (size_t)B * H; i++) m->x[i] += m->h[i];
        /* feed-forward half */
        for (int b = 0; b < B; b++) rms_norm(m->x + (size_t)b * H, m->ln2[l], m->h + (size_t)b * H, H, m->eps);
        qmatmul(m, &m->gate_up[l], m->h, B, m->gu, m->xq);
        for (int b = 0; b < B; b++) {
            const float *gate = m->gu + (size_t)b * 2 * I, *up = gate + I;
            float *a = m->act + (size_t)b * I;
            silu_mul(gate, up, a, I);
        }
        qmatmul(m, &m->down[l], m->act, B, m->h, m->xq);
        for (size_t i = 0; i < (size_t)B * H; i++) m->x[i] += m->h[i];
    }
    for (int b = 0; b < B; b++) rms_norm(m->x + (size_t)b * H, m->final_norm, m->h + (size_t)b * H, H, m->eps);
    qmatmul(m, &m->lm_head, m->h, B, logits, m->xq);
    return 0;
}
