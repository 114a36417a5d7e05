# gunicorn settings for the local httpbin that `cargo xtask run` starts (workbench/src/httpbin.rs).
import ctypes
import logging
import signal

# httpbin warns on import, once per process, that its optional Swagger UI (flasgger) is missing;
# nothing here uses it.
logging.getLogger("httpbin.core").setLevel(logging.ERROR)

PR_SET_PDEATHSIG = 1


def post_fork(server, worker):
    # A worker dies with its master, as the master dies with xtask (the workbench sets the same
    # flag on the master); otherwise workers notice a lost master only at their next timeout.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
