/*
 * test_size.c — checked size arithmetic (util/size.c): the bounds every value and buffer is
 * held to, and the conversions that replace plain casts.
 */
#include <criterion/criterion.h>
#include <math.h>

#include "kl.h"

static kl_shape shape2(int64_t a, int64_t b) { return (kl_shape){.rank = 2, .dim = {a, b}}; }

Test(size, checked_multiply_and_add) {
    int64_t r;
    cr_expect(kl_mul_checked(3, 4, &r) && r == 12);
    cr_expect(!kl_mul_checked(INT64_MAX, 2, &r));
    cr_expect(!kl_mul_checked((int64_t)1 << 32, (int64_t)1 << 31, &r));
    cr_expect(kl_add_checked(INT64_MAX - 1, 1, &r) && r == INT64_MAX);
    cr_expect(!kl_add_checked(INT64_MAX, 1, &r));
    cr_expect_eq(kl_mul_saturate(INT64_MAX, 2), INT64_MAX);
    cr_expect_eq(kl_mul_saturate(INT64_MAX, -2), INT64_MIN);
    cr_expect_eq(kl_mul_saturate(-5, 7), -35);
}

Test(size, tensor_bytes_within_the_bound) {
    int64_t bytes;
    kl_shape s = shape2(1024, 1024);
    cr_expect(kl_shape_bytes_checked(&s, KL_F32, &bytes) && bytes == 4 << 20);
    s = shape2(KL_MAX_BYTES / 4, 1); /* exactly the bound */
    cr_expect(kl_shape_bytes_checked(&s, KL_F32, &bytes) && bytes == KL_MAX_BYTES);
    s = shape2(KL_MAX_BYTES / 4 + 1, 1);
    cr_expect(!kl_shape_bytes_checked(&s, KL_F32, &bytes), "one element past 1 TiB");
}

Test(size, tensor_bytes_refuse_overflow_and_negatives) {
    int64_t bytes;
    kl_shape s = shape2(INT64_MAX, 1);
    cr_expect(!kl_shape_bytes_checked(&s, KL_U8, &bytes));
    s = shape2((int64_t)1 << 31, (int64_t)1 << 31); /* 2^62 elements: the count fits, bytes not */
    cr_expect(!kl_shape_bytes_checked(&s, KL_F32, &bytes));
    s = shape2(-1, 4);
    cr_expect(!kl_shape_bytes_checked(&s, KL_F32, &bytes));
    s.rank = KL_MAX_RANK + 1;
    cr_expect(!kl_shape_bytes_checked(&s, KL_F32, &bytes));
}

Test(size, empty_tensor_still_bounds_its_other_dims) {
    int64_t bytes;
    kl_shape s = {.rank = 3, .dim = {0, (int64_t)1 << 32, (int64_t)1 << 31}};
    cr_expect(!kl_shape_bytes_checked(&s, KL_F32, &bytes),
              "the nonzero dims' product becomes loop trip counts: it must fit too");
    s = (kl_shape){.rank = 3, .dim = {0, 1000, 1000}};
    cr_expect(kl_shape_bytes_checked(&s, KL_F32, &bytes) && bytes == 0);
}

Test(size, diagnostics_name_the_value) {
    kl_diag d;
    kl_diag_init(&d, "m.onnx");
    kl_arena *a = kl_arena_new();
    kl_shape s = shape2(2, -3);
    cr_expect(!kl_check_tensor_size(a, &s, KL_F32, NULL, "input 'x'", &d));
    cr_expect(strstr(d.text, "m.onnx: input 'x' has a negative dimension (-3 in shape [2,-3])"),
              "%s", d.text);
    kl_diag_free(&d);
    kl_diag_init(&d, "m.onnx");
    s = shape2((int64_t)1 << 40, 8);
    cr_expect(!kl_check_tensor_size(a, &s, KL_F32, NULL, "output 'y'", &d));
    cr_expect(strstr(d.text, "output 'y' is too large: shape [1099511627776,8] of float32"),
              "%s", d.text);
    kl_diag_free(&d);
    kl_arena_free(a);
}

Test(size, doubles_to_dims_and_indices) {
    int64_t dim;
    cr_expect(kl_dim_from_double(12.0, &dim) && dim == 12);
    cr_expect(!kl_dim_from_double(NAN, &dim));
    cr_expect(!kl_dim_from_double(INFINITY, &dim));
    cr_expect(!kl_dim_from_double(-1.0, &dim));
    cr_expect(!kl_dim_from_double(1e300, &dim));
    cr_expect_eq(kl_index_from_double(NAN), 0);
    cr_expect_eq(kl_index_from_double(1e300), (int64_t)1 << 62);
    cr_expect_eq(kl_index_from_double(-INFINITY), -((int64_t)1 << 62));
    cr_expect_eq(kl_index_from_double(-7.9), -7);
}
