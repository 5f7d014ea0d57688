/* placeholder */
#include "kl.h"
