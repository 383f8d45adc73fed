"""Measurement: binding candidates to kernels, correctness checks, roofline, ahead-of-time compiles."""
