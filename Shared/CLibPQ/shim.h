#ifndef CSS_CLIBPQ_SHIM_H
#define CSS_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
