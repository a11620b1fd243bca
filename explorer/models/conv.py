"""A small convolutional VAE (two stride-2 convs each way)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from explorer.config import ModelConfig, option
from explorer.errors import ConfigError
from explorer.models.base import BaseVAE
from explorer.models.registry import register


@dataclass(frozen=True)
class ConvConfig(ModelConfig):
    """Two stride-2 conv layers down, two transposed conv layers up."""

    channels: tuple[int, ...] = option((32, 64), "channels of the two conv layers, e.g. 32,64", "Conv channels")
    fc: int = option(128, "units of the fully connected layer", "Dense units", lo=1, hi=4096)

    def validate(self) -> None:
        super().validate()
        _, h, w = self.in_shape
        if h % 4 or w % 4:
            raise ConfigError(f"the conv model needs height and width divisible by 4, got {h}x{w}")
        if len(self.channels) != 2 or any(not isinstance(c, int) or not 1 <= c <= 512 for c in self.channels):
            raise ConfigError(f"channels must be two ints from 1 to 512, got {self.channels!r}")
        if not isinstance(self.fc, int) or not 1 <= self.fc <= 4096:
            raise ConfigError(f"fc must be an int from 1 to 4096, got {self.fc!r}")


@register("vae-conv")
class VAEConv(BaseVAE):
    """(C,H,W) -conv-> (c1,H/2,W/2) -conv-> (c2,H/4,W/4) -fc-> z, and the mirror image back."""

    config_cls = ConvConfig

    def __init__(self, config: ConvConfig) -> None:
        super().__init__(config)
        c, h, w = config.in_shape
        c1, c2 = config.channels
        self._grid = (c2, h // 4, w // 4)
        flat = c2 * (h // 4) * (w // 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(c, c1, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 4, 2, 1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(flat, config.fc),
            nn.ReLU(),
            nn.Linear(config.fc, 2 * config.latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(config.latent_dim, config.fc),
            nn.ReLU(),
            nn.Linear(config.fc, flat),
            nn.ReLU(),
            nn.Unflatten(1, self._grid),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, c, 4, 2, 1),
        )

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # (B, z) each
        return mu, logvar

    def decode_logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(z)  # (B, C, H, W)
