/*
 * ops.h — what the operator files of ops/ share with the op table.
 *
 * Each file owns a family of operators and exports one array of entries, terminated by an
 * entry whose name is NULL. table.c concatenates the families; an operator appears once.
 * An entry covers an opset range; an operator whose semantics changed between opsets either
 * handles both in one entry (reading n->opset) or has one entry per range.
 */
#ifndef KIL_OPS_H
#define KIL_OPS_H
#include "kl.h"

extern const kl_op kl_ops_elementwise[]; /* elementwise.c: Add Sub Mul Div Pow Mod, comparisons,
                                             And Or Xor Not, unary math, Sum Max Min Mean,
                                             Where Cast CastLike BitCast */
extern const kl_op kl_ops_activation[];  /* activation.c: Relu LeakyRelu Sigmoid Tanh Clip
                                             HardSigmoid HardSwish Elu Selu Celu Gelu PRelu
                                             Softplus Softsign Mish Swish Shrink ... */
extern const kl_op kl_ops_matmul[];      /* matmul.c: MatMul MatMulInteger QLinearMatMul Gemm */
extern const kl_op kl_ops_conv[];        /* conv.c: Conv ConvInteger QLinearConv */
extern const kl_op kl_ops_conv_variants[]; /* conv_variants.c: ConvTranspose DeformConv
                                               CausalConvWithState */
extern const kl_op kl_ops_pool[];        /* pool.c: MaxPool AveragePool LpPool, Global*Pool,
                                             MaxUnpool */
extern const kl_op kl_ops_norm[];        /* norm.c: BatchNormalization Softmax LogSoftmax
                                             Hardmax Instance/Layer/Group/RMSNormalization
                                             LRN */
extern const kl_op kl_ops_loss[];        /* loss.c: NegativeLogLikelihoodLoss
                                             SoftmaxCrossEntropyLoss */
extern const kl_op kl_ops_reduce[];      /* reduce.c: Reduce* (all ten), ArgMax ArgMin */
extern const kl_op kl_ops_reshape[];     /* reshape.c: Reshape Flatten Squeeze Unsqueeze Identity
                                             Dropout Shape Constant ConstantOfShape Expand */
extern const kl_op kl_ops_movement[];    /* movement.c: Transpose Concat Split Slice Gather */
extern const kl_op kl_ops_indexing[];    /* indexing.c: GatherElements GatherND Scatter*
                                             TensorScatter OneHot CumSum Trilu */
extern const kl_op kl_ops_resize[];      /* resize.c: Resize Upsample */
extern const kl_op kl_ops_recurrent[];   /* recurrent.c: RNN GRU LSTM */
extern const kl_op kl_ops_attention[];   /* attention.c: Attention RotaryEmbedding
                                             FlexAttention (ai.onnx.preview) */
extern const kl_op kl_ops_linear_attention[]; /* linear_attention.c: LinearAttention */
extern const kl_op kl_ops_tfidf[];       /* tfidf.c: TfIdfVectorizer */
extern const kl_op kl_ops_trees[];       /* trees.c: TreeEnsemble (ai.onnx.ml) */
extern const kl_op kl_ops_trees_legacy[]; /* trees_legacy.c: TreeEnsembleRegressor
                                             TreeEnsembleClassifier (ai.onnx.ml) */
extern const kl_op kl_ops_center_crop_pad[]; /* center_crop_pad.c: CenterCropPad */
extern const kl_op kl_ops_gridsample[];  /* gridsample.c: GridSample */
extern const kl_op kl_ops_einsum[];      /* einsum.c: Einsum */
extern const kl_op kl_ops_dropout[];     /* dropout.c: Dropout (inference and training) */
extern const kl_op kl_ops_random[];      /* random.c: RandomUniform RandomNormal
                                             RandomUniformLike RandomNormalLike (drawn while
                                             compiling) */
extern const kl_op kl_ops_bernoulli[];   /* bernoulli.c: Bernoulli */
extern const kl_op kl_ops_multinomial[]; /* multinomial.c: Multinomial */
extern const kl_op kl_ops_dft[];         /* dft.c: DFT */
extern const kl_op kl_ops_topk[];        /* topk.c: TopK */
extern const kl_op kl_ops_nonzero[];     /* nonzero.c: NonZero Compress (data-dependent) */
extern const kl_op kl_ops_unique[];      /* unique.c: Unique (data-dependent) */
extern const kl_op kl_ops_nms[];         /* nms.c: NonMaxSuppression (data-dependent) */
extern const kl_op kl_ops_signal[];      /* signal.c: HannWindow HammingWindow BlackmanWindow MelWeightMatrix
                                             STFT */
extern const kl_op kl_ops_col2im[];      /* col2im.c: Col2Im */
extern const kl_op kl_ops_affine_grid[]; /* affine_grid.c: AffineGrid */
extern const kl_op kl_ops_roialign[];    /* roialign.c: RoiAlign */
extern const kl_op kl_ops_det[];         /* det.c: Det */
extern const kl_op kl_ops_quantize[];    /* quantize.c: QuantizeLinear DequantizeLinear
                                             DynamicQuantizeLinear */
extern const kl_op kl_ops_gradient[];    /* gradient.c: Gradient (ai.onnx.preview.training):
                                             differentiated while compiling */
extern const kl_op kl_ops_training[];    /* training.c: Adagrad Momentum Adam
                                             (ai.onnx.preview.training) */
extern const kl_op kl_ops_control[];     /* control.c: If (branches inlined by the loader) */
extern const kl_op kl_ops_sequence[];    /* sequence.c: Sequence* SplitToSequence
                                             ConcatFromSequence Optional*: compiled away */
extern const kl_op kl_ops_strings[];     /* strings.c: StringConcat StringNormalizer */
extern const kl_op kl_ops_string_split[]; /* string_split.c: StringSplit */
extern const kl_op kl_ops_regex_full_match[]; /* regex_full_match.c: RegexFullMatch */
extern const kl_op kl_ops_encoders[];    /* encoders.c: LabelEncoder CategoryMapper
                                             (ai.onnx.ml) */
extern const kl_op kl_ops_ml[];          /* ml.c: Binarizer ArrayFeatureExtractor
                                             (ai.onnx.ml) */
extern const kl_op kl_ops_ml_linear[];   /* ml_linear.c: LinearRegressor LinearClassifier
                                             (ai.onnx.ml) */
extern const kl_op kl_ops_ml_features[]; /* ml_features.c: Scaler Normalizer Imputer
                                             FeatureVectorizer OneHotEncoder (ai.onnx.ml) */
extern const kl_op kl_ops_ml_svm[];      /* ml_svm.c: SVMRegressor SVMClassifier (ai.onnx.ml) */

/* The newest ai.onnx opset kiln knows (the backend tests go up to 28): entries whose semantics
 * have not changed since their last version use it as `until`. */
#define KL_OPSET_LATEST 28
/* The newest ai.onnx.ml opset (5): its operators unchanged since version 1 accept every model
 * that imports 1 to 5, as skl2onnx exports import 1 or 3. */
#define KL_ML_OPSET_LATEST 5

#endif
