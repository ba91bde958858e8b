/* The one way coil talks to humans: every layer reports through coil__log. */
#ifndef COIL_RING_LOG_H
#define COIL_RING_LOG_H

#include "coil.h"

/* Format a message and hand it to the log hook (coil_set_log). */
void coil__log(enum coil_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
