"""Bring your own VAE: ONNX encoder/decoder pairs (no code run) and trusted torch models (CLI only).

Both are seen as a ``BaseVAE`` (``explorer.foreign.base.ForeignVAE``), so every analysis and page
works on them. ``model.stochastic`` (also ``model.has_prior``) is False for encoders that give only mu.
"""
