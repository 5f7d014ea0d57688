/* activation.c — placeholder: filled by the operator family's author. */
#include "ops.h"

const kl_op kl_ops_activation[] = {{0}};
