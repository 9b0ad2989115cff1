"""Shared test set-up: one torch thread (3-9x faster on 2 cores)."""

import torch

torch.set_num_threads(1)
