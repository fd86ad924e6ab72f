"""The scheduler: policies (rule-based baselines and the learned TapFinger), models, MARL
training and evaluation."""
