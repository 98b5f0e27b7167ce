"""The run wing: corpora cache, scoring, tasks and their cache, calibration, executors, timing,
perturbations, metrics, sensitivity and progress."""
