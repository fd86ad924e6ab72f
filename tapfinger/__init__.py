"""The scheduler: policies (rule-based baselines and the learned TapFinger), models, MARL
training and evaluation."""

import os

# oneDNN (inside torch's CPU kernels: GELU among them) caches a compiled primitive per tensor
# shape, up to 1,024 of them. Training feeds ever new batch sizes (only the agents with something
# to start go through the actor), so a cache that large only grows: +40% learner RSS over 1 M
# steps (benchmarks/train_memory.py). Without any cache, every GELU compiles its primitive anew
# (about 4x its cost at batch 1-6), which a decision pays on every layer. A small cache keeps the
# few shapes that acting repeats and bounds the memory. The user's own setting wins; read when
# torch first builds a primitive, so setting it here, at import, is in time.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "32")
