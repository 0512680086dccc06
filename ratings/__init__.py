import os

# The dense systems here are small (one row per model): a single BLAS thread
# solves them fastest and never spin-waits against the web and worker
# processes sharing the cores. Only effective before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
