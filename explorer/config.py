"""Validated model configs (one dataclass per model family, nanoGPT/pythae style)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, TypeVar

from explorer.errors import ConfigError

RECON_LOSSES = ("bce", "mse")
MAX_LATENT = 64
MAX_PIXELS = 4096 * 4  # C*H*W; MNIST is 784
# Caps every config goes through (``ModelConfig._check_caps``) before any model is built, so a
# hostile checkpoint header cannot ask for a model that fills the server's memory.
MAX_TUPLE_LEN = 8  # entries in any list field: hidden layers, channels, dims of a shape
MAX_WIDTH = 4096  # any int field or list entry: a layer's width, a shape's side
MAX_ANCHORS = 32
MAX_PARAMS = 16 * 2**20  # parameters of any model: 64 MB of float32, the checkpoint size limit
T = TypeVar("T", bound="ModelConfig")


@dataclass(frozen=True)
class AnchorSpec:
    """One anchor: a prototype image (flattened, values in [0,1]) and its target in latent space."""

    name: str
    prototype: tuple[float, ...]
    target: tuple[float, ...]


@dataclass(frozen=True)
class ModelConfig:
    """Settings every model shares. Subclasses add architecture fields."""

    in_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W)
    latent_dim: int = 2
    beta: float = 1.0
    recon: str = "bce"
    n_classes: int = 10
    anchors: tuple[AnchorSpec, ...] = ()
    anchor_rate: float = 0.0
    anchor_score: str = "overlap"  # "overlap" (normalised dot product) or "cosine"

    def __post_init__(self) -> None:
        self._check_caps()
        self.validate()

    def _check_caps(self) -> None:
        """Generic size caps on every field, whatever the subclass: list lengths, widths, shapes."""
        if len(self.anchors) > MAX_ANCHORS:
            raise ConfigError(f"at most {MAX_ANCHORS} anchors, got {len(self.anchors)}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            ints = [v for v in (value if isinstance(value, tuple) else (value,)) if _is_int(v)]
            if isinstance(value, tuple) and len(value) > MAX_TUPLE_LEN:
                raise ConfigError(f"{f.name} has {len(value)} entries; the limit is {MAX_TUPLE_LEN}")
            if any(v > MAX_WIDTH for v in ints):
                raise ConfigError(f"{f.name} {value!r} is too large; sizes are limited to {MAX_WIDTH}")
            if f.name.endswith("shape") and math.prod(ints) > MAX_PIXELS:
                raise ConfigError(f"{f.name} {value!r} has more than the {MAX_PIXELS} values supported")

    @property
    def n_pixels(self) -> int:
        c, h, w = self.in_shape
        return c * h * w

    def validate(self) -> None:
        """Raise ConfigError on any value out of range."""
        if len(self.in_shape) != 3 or any(not isinstance(d, int) or d < 1 for d in self.in_shape):
            raise ConfigError(f"in_shape must be three positive ints (C, H, W), got {self.in_shape}")
        if self.n_pixels > MAX_PIXELS:
            raise ConfigError(f"images of {self.n_pixels} values are larger than the {MAX_PIXELS} supported")
        if not isinstance(self.latent_dim, int) or not 1 <= self.latent_dim <= MAX_LATENT:
            raise ConfigError(f"latent_dim must be an int from 1 to {MAX_LATENT}, got {self.latent_dim!r}")
        if not _finite(self.beta) or not 0 <= self.beta <= 1000:
            raise ConfigError(f"beta must be a number from 0 to 1000, got {self.beta!r}")
        if self.recon not in RECON_LOSSES:
            raise ConfigError(f"recon must be one of {RECON_LOSSES}, got {self.recon!r}")
        if not isinstance(self.n_classes, int) or not 1 <= self.n_classes <= 1000:
            raise ConfigError(f"n_classes must be an int from 1 to 1000, got {self.n_classes!r}")
        if not _finite(self.anchor_rate) or not 0 <= self.anchor_rate <= 1000:
            raise ConfigError(f"anchor_rate must be a number from 0 to 1000, got {self.anchor_rate!r}")
        if self.anchor_score not in ("overlap", "cosine"):
            raise ConfigError(f"anchor_score must be 'overlap' or 'cosine', got {self.anchor_score!r}")
        for a in self.anchors:
            if len(a.prototype) != self.n_pixels:
                raise ConfigError(f"anchor {a.name!r} has {len(a.prototype)} pixels, images have {self.n_pixels}")
            if len(a.target) != self.latent_dim:
                raise ConfigError(f"anchor {a.name!r} target has {len(a.target)} dims, latent has {self.latent_dim}")
            if not all(_finite(v) for v in (*a.prototype, *a.target)):
                raise ConfigError(f"anchor {a.name!r} has non-finite values")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Build and validate a config from JSON data; unknown keys and wrong types are errors."""
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a JSON object, got {type(data).__name__}")
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(names)
        if unknown:
            raise ConfigError(f"unknown config keys for {cls.__name__}: {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            kwargs[key] = _coerce(key, value, names[key].default)
        try:
            return cls(**kwargs)
        except TypeError as exc:  # e.g. comparing a str with an int inside validate
            raise ConfigError(f"bad config: {exc}") from None

    def replace(self: T, **changes: Any) -> T:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class MLPConfig(ModelConfig):
    """Fully connected encoder/decoder: pixels-hidden...-z (ReLU, sigmoid output)."""

    hidden: tuple[int, ...] = (400, 100)

    def validate(self) -> None:
        super().validate()
        if not self.hidden or any(not isinstance(h, int) or not 1 <= h <= 4096 for h in self.hidden):
            raise ConfigError(f"hidden must be 1+ ints from 1 to 4096, got {self.hidden!r}")
        if len(self.hidden) > 6:
            raise ConfigError("at most 6 hidden layers")


@dataclass(frozen=True)
class ConvConfig(ModelConfig):
    """Two stride-2 conv layers down, two transposed conv layers up."""

    channels: tuple[int, ...] = (32, 64)
    fc: int = 128

    def validate(self) -> None:
        super().validate()
        _, h, w = self.in_shape
        if h % 4 or w % 4:
            raise ConfigError(f"the conv model needs height and width divisible by 4, got {h}x{w}")
        if len(self.channels) != 2 or any(not isinstance(c, int) or not 1 <= c <= 512 for c in self.channels):
            raise ConfigError(f"channels must be two ints from 1 to 512, got {self.channels!r}")
        if not isinstance(self.fc, int) or not 1 <= self.fc <= 4096:
            raise ConfigError(f"fc must be an int from 1 to 4096, got {self.fc!r}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Turn JSON lists back into the tuples the dataclass expects."""
    if key == "anchors":
        if not isinstance(value, list | tuple):
            raise ConfigError("anchors must be a list")
        out = []
        for a in value:
            if not isinstance(a, dict) or set(a) != {"name", "prototype", "target"}:
                raise ConfigError("each anchor needs exactly name, prototype and target")
            if not isinstance(a["prototype"], list | tuple) or not isinstance(a["target"], list | tuple):
                raise ConfigError("anchor prototype and target must be lists of numbers")
            out.append(AnchorSpec(str(a["name"]), tuple(a["prototype"]), tuple(a["target"])))
        return tuple(out)
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} must be a list, got {type(value).__name__}")
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not type(default):
        raise ConfigError(f"{key} must be {type(default).__name__}, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class JointConfig(ModelConfig):
    """Two modalities, one encoder and decoder each, fused into one posterior."""

    modalities: tuple[str, ...] = ("mnist", "fashion-mnist")
    second: str = "image"  # "image" (sigmoid/BCE), "label" (softmax/cross-entropy) or "text" (bag of words, BCE)
    second_shape: tuple[int, ...] = (1, 28, 28)
    hidden: tuple[int, ...] = (400,)
    fusion: str = "poe"  # product of experts, or "mean" of means and log-variances
    unimodal: bool = True  # add each modality's own ELBO (sub-sampled training)
    cca_weight: float = 0.0  # correlation alignment between the modality-specific means
    adv_weight: float = 0.0  # modality discriminator on the codes, through gradient reversal
    contrastive_weight: float = 0.0  # each code's nearest other-modality codes in the batch are its partners
    temperature: float = 1.0  # of the contrastive softmax over squared distances

    def validate(self) -> None:
        super().validate()
        if len(self.modalities) != 2:
            raise ConfigError("a joint model has exactly two modalities")
        if self.second not in ("image", "label", "text"):
            raise ConfigError(f"second must be 'image', 'label' or 'text', got {self.second!r}")
        if not self.second_shape or any(not isinstance(d, int) or d < 1 for d in self.second_shape):
            raise ConfigError(f"bad second_shape {self.second_shape!r}")
        if not self.hidden or any(not isinstance(h, int) or not 1 <= h <= 4096 for h in self.hidden):
            raise ConfigError(f"hidden must be ints from 1 to 4096, got {self.hidden!r}")
        if self.fusion not in ("poe", "mean"):
            raise ConfigError(f"fusion must be 'poe' or 'mean', got {self.fusion!r}")
        for w in (self.cca_weight, self.adv_weight, self.contrastive_weight):
            if not _finite(w) or not 0 <= w <= 1000:
                raise ConfigError("alignment weights must be numbers from 0 to 1000")
        if not _finite(self.temperature) or not 0.01 <= self.temperature <= 100:
            raise ConfigError(f"temperature must be from 0.01 to 100, got {self.temperature!r}")
