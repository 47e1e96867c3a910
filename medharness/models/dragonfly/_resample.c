/* Dragonfly's CPU preprocessing kernels: one pass of Pillow's 8-bit resample, a pixel transpose,
 * and the cut of a canvas into normalised crops. medharness/models/dragonfly/native.py drives
 * them and holds the reasoning; every function here is checked byte for byte against PIL.
 *
 * A pass always runs along the outer axis, so its inner loop walks contiguous bytes and the
 * compiler vectorises it; the horizontal pass is a pass over the transposed image. Coefficients
 * and window starts come from Python (resample.coefficients, Pillow's own float64 rules), so
 * this file holds only integer arithmetic: int32 sums starting at 2^21, then clip8. The GIL is
 * released while a kernel runs, so the prefetching threads of a run work in parallel. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define PRECISION_BITS 22
#define CHUNK 3072 /* int32 sums per block (12 KiB, in L1 beside the input rows); a multiple of 1 and 3 */
#define TILE 32

static int
get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t need, const char *name)
{
    if (PyObject_GetBuffer(obj, view, writable ? PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS : PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->len < need) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, needs %zd", name, view->len, need);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* x86-64 with glibc (target_clones needs its ifunc): AVX2 and SSE4.1 builds of the hot loop as
 * well (SSE2 has no 32-bit vector multiply), chosen by the CPU at load time; elsewhere the
 * compiler's baseline, which vectorises it on its own (NEON has the multiply). */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__GNUC__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "sse4.1", "default")))
#else
#define VECTOR_CLONES
#endif

/* One output row of a pass over values j0 .. j0 + n of each input row, into out[0 .. n). */
VECTOR_CLONES static void
pass_row(const uint8_t *src, Py_ssize_t row_len, Py_ssize_t j0, Py_ssize_t n, int32_t start, int32_t count,
         const int32_t *k, uint8_t *out)
{
    int32_t acc[CHUNK];
    for (Py_ssize_t j = 0; j < n; j++)
        acc[j] = 1 << (PRECISION_BITS - 1);
    for (int32_t t = 0; t < count; t++) {
        const int32_t c = k[t];
        const uint8_t *in = src + (Py_ssize_t)(start + t) * row_len + j0;
        if (c == 0)
            continue;
        for (Py_ssize_t j = 0; j < n; j++)
            acc[j] += (int32_t)in[j] * c;
    }
    for (Py_ssize_t j = 0; j < n; j++) {
        int32_t v = acc[j] >> PRECISION_BITS;
        out[j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* Rows o0 .. o1 of a transposed pass, held in `tile` ([TILE, CHUNK] bytes), written as columns:
 * value j = y * channels + c of row o goes to [y, o, c]; runs of (o1 - o0) pixels per y. */
static inline void
scatter_columns(const uint8_t *tile, Py_ssize_t j0, Py_ssize_t n, Py_ssize_t o0, Py_ssize_t o1,
                Py_ssize_t rows_out, Py_ssize_t channels, uint8_t *dst)
{
    for (Py_ssize_t j = 0; j < n; j += channels) {
        uint8_t *to = dst + (((j0 + j) / channels) * rows_out + o0) * channels;
        for (Py_ssize_t o = o0; o < o1; o++, to += channels)
            for (Py_ssize_t c = 0; c < channels; c++)
                to[c] = tile[(o - o0) * CHUNK + j + c];
    }
}

/* A pass: output row o from rows starts[o] .. starts[o] + counts[o] of src. With `transposed`,
 * the output is [row_len / channels, rows_out, channels]: TILE rows at a time are made in a
 * buffer and written out as columns, so that the writes run along cache lines. */
static void
pass_rows_kernel(const uint8_t *src, Py_ssize_t row_len, uint8_t *dst, Py_ssize_t rows_out,
                 const int32_t *starts, const int32_t *counts, const int32_t *coeffs, Py_ssize_t ksize,
                 int transposed, Py_ssize_t channels, uint8_t *tile)
{
    for (Py_ssize_t o0 = 0; o0 < rows_out; o0 += TILE) {
        Py_ssize_t o1 = o0 + TILE < rows_out ? o0 + TILE : rows_out;
        for (Py_ssize_t j0 = 0; j0 < row_len; j0 += CHUNK) {
            Py_ssize_t n = row_len - j0 < CHUNK ? row_len - j0 : CHUNK;
            for (Py_ssize_t o = o0; o < o1; o++)
                pass_row(src, row_len, j0, n, starts[o], counts[o], coeffs + o * ksize,
                         transposed ? tile + (o - o0) * CHUNK : dst + o * row_len + j0);
            if (transposed && channels == 3)
                scatter_columns(tile, j0, n, o0, o1, rows_out, 3, dst);
            else if (transposed)
                scatter_columns(tile, j0, n, o0, o1, rows_out, channels, dst);
        }
    }
}

/* pass_rows(src, rows_in, row_len, dst, rows_out, starts, counts, coeffs, ksize, transposed,
 * channels): output row o is clip8(2^21 + sum_t coeffs[o, t] * src[starts[o] + t]) for
 * t < counts[o], written as row o of dst or, with `transposed`, as its column o. */
static PyObject *
pass_rows(PyObject *self, PyObject *args)
{
    PyObject *src_obj, *dst_obj, *starts_obj, *counts_obj, *coeffs_obj;
    Py_ssize_t rows_in, row_len, rows_out, ksize, channels;
    int transposed;
    if (!PyArg_ParseTuple(args, "OnnOnOOOnpn", &src_obj, &rows_in, &row_len, &dst_obj, &rows_out, &starts_obj,
                          &counts_obj, &coeffs_obj, &ksize, &transposed, &channels))
        return NULL;
    if (channels < 1 || CHUNK % channels || row_len % channels) {
        PyErr_Format(PyExc_ValueError, "rows of %zd values do not hold pixels of %zd channels", row_len, channels);
        return NULL;
    }
    Py_buffer src, dst, starts, counts, coeffs;
    if (get_buffer(src_obj, &src, 0, rows_in * row_len, "src") < 0)
        return NULL;
    if (get_buffer(dst_obj, &dst, 1, rows_out * row_len, "dst") < 0)
        goto fail_src;
    if (get_buffer(starts_obj, &starts, 0, rows_out * 4, "starts") < 0)
        goto fail_dst;
    if (get_buffer(counts_obj, &counts, 0, rows_out * 4, "counts") < 0)
        goto fail_starts;
    if (get_buffer(coeffs_obj, &coeffs, 0, rows_out * ksize * 4, "coeffs") < 0)
        goto fail_counts;
    const int32_t *s = starts.buf, *c = counts.buf;
    for (Py_ssize_t o = 0; o < rows_out; o++) {
        if (s[o] < 0 || c[o] < 0 || c[o] > ksize || (Py_ssize_t)s[o] + c[o] > rows_in) {
            PyErr_Format(PyExc_ValueError, "window %zd reads rows %d..%d of %zd", o, s[o], s[o] + c[o], rows_in);
            goto fail_all;
        }
    }
    uint8_t *tile = transposed ? PyMem_RawMalloc(TILE * CHUNK) : NULL;
    if (transposed && tile == NULL) {
        PyErr_NoMemory();
        goto fail_all;
    }
    Py_BEGIN_ALLOW_THREADS
    pass_rows_kernel(src.buf, row_len, dst.buf, rows_out, s, c, coeffs.buf, ksize, transposed, channels, tile);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(tile);
    PyBuffer_Release(&coeffs);
    PyBuffer_Release(&counts);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&dst);
    PyBuffer_Release(&src);
    Py_RETURN_NONE;
fail_all:
    PyBuffer_Release(&coeffs);
fail_counts:
    PyBuffer_Release(&counts);
fail_starts:
    PyBuffer_Release(&starts);
fail_dst:
    PyBuffer_Release(&dst);
fail_src:
    PyBuffer_Release(&src);
    return NULL;
}

/* Tiled, so that both sides stay in cache; inlined with a constant `pixel` for RGB. */
static inline void
transpose_kernel(const uint8_t *in, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t pixel, uint8_t *out)
{
    for (Py_ssize_t r0 = 0; r0 < rows; r0 += TILE) {
        Py_ssize_t r1 = r0 + TILE < rows ? r0 + TILE : rows;
        for (Py_ssize_t c0 = 0; c0 < cols; c0 += TILE) {
            Py_ssize_t c1 = c0 + TILE < cols ? c0 + TILE : cols;
            for (Py_ssize_t r = r0; r < r1; r++)
                for (Py_ssize_t c = c0; c < c1; c++)
                    for (Py_ssize_t p = 0; p < pixel; p++)
                        out[(c * rows + r) * pixel + p] = in[(r * cols + c) * pixel + p];
        }
    }
}

/* transpose(src, rows, cols, pixel, dst): [rows, cols, pixel] bytes -> [cols, rows, pixel]. */
static PyObject *
transpose(PyObject *self, PyObject *args)
{
    PyObject *src_obj, *dst_obj;
    Py_ssize_t rows, cols, pixel;
    if (!PyArg_ParseTuple(args, "OnnnO", &src_obj, &rows, &cols, &pixel, &dst_obj))
        return NULL;
    Py_buffer src, dst;
    if (get_buffer(src_obj, &src, 0, rows * cols * pixel, "src") < 0)
        return NULL;
    if (get_buffer(dst_obj, &dst, 1, rows * cols * pixel, "dst") < 0) {
        PyBuffer_Release(&src);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (pixel == 3)
        transpose_kernel(src.buf, rows, cols, 3, dst.buf);
    else
        transpose_kernel(src.buf, rows, cols, pixel, dst.buf);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&dst);
    PyBuffer_Release(&src);
    Py_RETURN_NONE;
}

/* crops(canvas, height, width, channels, se, table, out, first): the se x se crops of an
 * [height, width, channels] uint8 canvas in raster order, written planar as float32 into
 * out[first:], each value table[channel, byte]. Returns the index after the last crop. */
static PyObject *
crops(PyObject *self, PyObject *args)
{
    PyObject *canvas_obj, *table_obj, *out_obj;
    Py_ssize_t height, width, channels, se, first;
    if (!PyArg_ParseTuple(args, "OnnnnOOn", &canvas_obj, &height, &width, &channels, &se, &table_obj, &out_obj, &first))
        return NULL;
    if (first < 0 || channels < 1) {
        PyErr_Format(PyExc_ValueError, "crops start at index %zd of pixels of %zd channels", first, channels);
        return NULL;
    }
    if (se <= 0 || height % se || width % se) {
        PyErr_Format(PyExc_ValueError, "a %zdx%zd canvas does not cut into %zd px crops", width, height, se);
        return NULL;
    }
    Py_ssize_t rows = height / se, cols = width / se, crop_len = channels * se * se;
    Py_buffer canvas, table, out;
    if (get_buffer(canvas_obj, &canvas, 0, height * width * channels, "canvas") < 0)
        return NULL;
    if (get_buffer(table_obj, &table, 0, channels * 256 * 4, "table") < 0) {
        PyBuffer_Release(&canvas);
        return NULL;
    }
    if (get_buffer(out_obj, &out, 1, (first + rows * cols) * crop_len * 4, "out") < 0) {
        PyBuffer_Release(&table);
        PyBuffer_Release(&canvas);
        return NULL;
    }
    const uint8_t *pixels = canvas.buf;
    const float *lookup = table.buf;
    float *dst = (float *)out.buf + first * crop_len;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t cy = 0; cy < rows; cy++)
        for (Py_ssize_t cx = 0; cx < cols; cx++) {
            float *crop = dst + (cy * cols + cx) * crop_len;
            for (Py_ssize_t c = 0; c < channels; c++) {
                const float *t = lookup + c * 256;
                for (Py_ssize_t y = 0; y < se; y++) {
                    const uint8_t *in = pixels + ((cy * se + y) * width + cx * se) * channels + c;
                    float *row = crop + (c * se + y) * se;
                    for (Py_ssize_t x = 0; x < se; x++)
                        row[x] = t[in[x * channels]];
                }
            }
        }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    PyBuffer_Release(&table);
    PyBuffer_Release(&canvas);
    return PyLong_FromSsize_t(first + rows * cols);
}

static PyMethodDef methods[] = {
    {"pass_rows", pass_rows, METH_VARARGS, "One resampling pass along the outer axis."},
    {"transpose", transpose, METH_VARARGS, "[rows, cols, pixel] bytes to [cols, rows, pixel]."},
    {"crops", crops, METH_VARARGS, "A canvas cut into planar float32 crops through a lookup table."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_resample", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC
PyInit__resample(void)
{
    return PyModule_Create(&module);
}
