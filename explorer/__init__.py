"""Latent Explorer: look inside variational autoencoders.

The core package is plain Python and torch; only ``explorer.ui`` imports streamlit.
"""

__version__ = "0.1.0"
