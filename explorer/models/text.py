"""The text modality of the joint VAE: a bag-of-words encoder and decoder over the caption vocabulary.

A caption is a multi-hot vector over ``explorer.data.captions.VOCAB`` (word order is not kept: the
vocabulary's word groups carry the meaning). The encoder maps it to (mu, logvar); the decoder gives
one Bernoulli logit per word, so its sigmoid is each word's probability of being in the caption.
"""

from __future__ import annotations

from torch import nn

from explorer.models.mlp import mlp

TEXT_HIDDEN = 128  # the vocabulary is ~20 words: a small layer suffices


def text_networks(vocab_size: int, latent_dim: int, hidden: int = TEXT_HIDDEN) -> tuple[nn.Sequential, nn.Sequential]:
    """Encoder (B, V) -> (B, 2z) and decoder (B, z) -> (B, V) word logits."""
    return mlp([vocab_size, hidden, hidden, 2 * latent_dim]), mlp([latent_dim, hidden, hidden, vocab_size])
