"""Evaluation: quality metrics, classic-codec baselines and the codec benchmark."""
