"""Evaluation on recorded footage: ground truth, replay, matching, scores, report, scenario clips."""
