"""Training: the loop, run specs and the worker-side training job."""
