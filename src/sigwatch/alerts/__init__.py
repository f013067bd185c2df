"""Alerts: folding detections into stories, the alert lifecycle, and what announces a change."""
