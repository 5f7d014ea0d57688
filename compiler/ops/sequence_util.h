/*
 * sequence_util.h — what the sequence operators share (ops/sequence.c, which compiles sequences
 * away, and ops/sequence_positions.c, for positions given at run time): values and nodes they
 * add to the graph in place of a sequence operator.
 */
#ifndef KILN_SEQUENCE_UTIL_H
#define KILN_SEQUENCE_UTIL_H

#include "kl.h"

/* Nodes made here take the opset where Split/Squeeze/Unsqueeze read their sizes and axes from
 * inputs (constants made here). */
enum { KL_SEQ_TENSOR_OPSET = 13 };

/* A constant scalar of type t (KL_BOOL or an int64) named after n. */
kl_value *kl_seq_const_scalar(kl_graph *g, const kl_node *n, kl_dtype t, int64_t x);
/* A constant int64 [count] list named after n (count may be 0: Reshape's scalar shape). */
kl_value *kl_seq_const_i64_list(kl_graph *g, const kl_node *n, const int64_t *x, int count);
/* A value of no known shape yet (inference gives it one). */
kl_value *kl_seq_fresh_value(kl_graph *g, const char *base);
/* A tensor node standing for `like` (same guard, name derived from it); shape inference takes
 * it next. */
kl_node *kl_seq_add_node(kl_graph *g, const kl_node *like, const char *op_type, int n_in,
                         kl_value *const *in, int n_out, kl_value *const *out, kl_diag *d);

/* ops/sequence_positions.c: SequenceAt, SequenceInsert and SequenceErase whose position is a
 * run-time value, over tensors that share one element type and shape (s's tensors built). */
bool kl_sequence_at_run_time(kl_graph *g, kl_node *n, kl_value **items, int64_t count,
                             kl_value *position, kl_diag *d);
/* The new sequence's tensors go to out (count + 1 of them). */
bool kl_sequence_insert_at_run_time(kl_graph *g, kl_node *n, kl_value **items, int64_t count,
                                    kl_value *tensor, kl_value *position, kl_value **out,
                                    kl_diag *d);
/* count - 1 tensors go to out. */
bool kl_sequence_erase_at_run_time(kl_graph *g, kl_node *n, kl_value **items, int64_t count,
                                   kl_value *position, kl_value **out, kl_diag *d);

#endif
