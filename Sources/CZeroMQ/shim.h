#ifndef CZEROMQ_SHIM_H
#define CZEROMQ_SHIM_H
#include <zmq.h>
#include <errno.h>

/// errno as libzmq reports it, readable from Swift.
static inline int CZeroMQ_errno(void) { return zmq_errno(); }
#endif
