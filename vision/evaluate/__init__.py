"""Evaluation on recorded footage: scenario clips with exact ground truth."""
