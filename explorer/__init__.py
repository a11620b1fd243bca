"""Latent Explorer: look inside variational autoencoders.

The core package is plain Python and torch; only ``explorer.ui`` imports streamlit.
"""

__version__ = "0.1.0"


def versions() -> dict[str, str]:
    """Library versions recorded with every model the app saves or imports."""
    import platform

    import torch

    return {"explorer": __version__, "torch": torch.__version__, "python": platform.python_version()}
