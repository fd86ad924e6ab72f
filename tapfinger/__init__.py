"""The scheduler: policies (rule-based baselines and the learned TapFinger), models, MARL
training and evaluation."""

import os

# oneDNN (inside torch's CPU kernels) caches a compiled primitive per tensor shape, up to 1,024
# of them. Training feeds ever new batch sizes (only the agents with something to start go
# through the actor), so that cache only grows: +40% learner RSS over 1 M steps
# (benchmarks/train_memory.py), with no measurable speed-up from hits. Off unless the user
# set it; read when torch first builds a primitive, so setting it here, at import, is in time.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")
