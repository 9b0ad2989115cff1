"""Shared test set-up: one torch and one BLAS thread (3-9x faster on 2 cores)."""

import torch
from threadpoolctl import threadpool_limits

torch.set_num_threads(1)
threadpool_limits(1)
