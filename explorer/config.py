"""The base model config and the generic checks every config shares.

Each model family's config sits next to its model (``MLPConfig`` in models/mlp.py...).
Fields made with ``option()`` are the settings a user picks: the CLI's ``train`` flags and
the /train widgets are built from them; the rest are fixed by the dataset or the anchors.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, TypeVar

from explorer.errors import ConfigError

RECON_LOSSES = ("bce", "mse")
MAX_LATENT = 1024  # any latent size up to an MNIST image's 784 pixels, and some more; MAX_PARAMS still caps the model
UI_MAX_LATENT = (
    64  # the /train widget's range: larger latents are for the CLI (course models, an AE as wide as its input)
)
MAX_PIXELS = 4096 * 4  # C*H*W; MNIST is 784
# Caps every config goes through (``ModelConfig._check_caps``) before any model is built, so a
# hostile checkpoint header cannot ask for a model that fills the server's memory.
MAX_TUPLE_LEN = 8  # entries in any list field: hidden layers, channels, dims of a shape
MAX_WIDTH = 4096  # any int field or list entry: a layer's width, a shape's side
MAX_ANCHORS = 32
MAX_PARAMS = 16 * 2**20  # parameters of any model: 64 MB of float32, the checkpoint size limit
T = TypeVar("T", bound="ModelConfig")

MAX_HIDDEN_LAYERS = 6


@dataclass(frozen=True)
class Option:
    """A config field a user sets: its default, a one-line help, and choices or a range for widgets."""

    name: str
    default: Any
    help: str
    label: str = ""  # the widget's label; the name when empty
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    step: float | None = None

    def parse(self, text: str) -> Any:
        """The value from command-line text: ints, floats, words, ``true``/``false``, or ``400,100``."""
        if isinstance(self.default, bool):
            if text.lower() not in ("true", "false"):
                raise ValueError(f"{self.name} must be true or false")
            return text.lower() == "true"
        if isinstance(self.default, tuple):
            try:
                return tuple(int(v) for v in text.split(",") if v.strip())
            except ValueError:
                raise ValueError(f"{self.name} must be whole numbers separated by commas, e.g. 400,100") from None
        value = type(self.default)(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{self.name} must be a finite number")
        return value


def option(
    default: Any,
    help: str,
    label: str = "",
    choices: tuple[str, ...] = (),
    lo: float | None = None,
    hi: float | None = None,
    step: float | None = None,
) -> Any:
    """A dataclass field that users set (a CLI flag and a /train widget)."""
    meta = {"help": help, "label": label, "choices": choices, "lo": lo, "hi": hi, "step": step}
    return dataclasses.field(default=default, metadata=meta)


def config_options(cls: type[ModelConfig]) -> list[Option]:
    """The user-set fields of a config class, in declaration order."""
    return [Option(f.name, f.default, **f.metadata) for f in dataclasses.fields(cls) if "help" in f.metadata]


def check_hidden(hidden: Any) -> None:
    """Hidden layer sizes: 1 to MAX_HIDDEN_LAYERS ints from 1 to MAX_WIDTH."""
    if not hidden or any(not isinstance(h, int) or isinstance(h, bool) or not 1 <= h <= MAX_WIDTH for h in hidden):
        raise ConfigError(f"hidden must be 1+ ints from 1 to {MAX_WIDTH}, got {hidden!r}")
    if len(hidden) > MAX_HIDDEN_LAYERS:
        raise ConfigError(f"at most {MAX_HIDDEN_LAYERS} hidden layers, got {len(hidden)}")


def check_number(name: str, value: Any, lo: float = 0, hi: float = 1000) -> None:
    """A finite number from ``lo`` to ``hi``."""
    if not _finite(value) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be a number from {lo:g} to {hi:g}, got {value!r}")


@dataclass(frozen=True)
class AnchorSpec:
    """One anchor: a prototype image (flattened, values in [0,1]) and its target in latent space."""

    name: str
    prototype: tuple[float, ...]
    target: tuple[float, ...]


@dataclass(frozen=True)
class ModelConfig:
    """Settings every model shares. Subclasses add architecture fields."""

    in_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W), from the dataset
    latent_dim: int = option(
        2,
        f"size of the latent code: 1 to {UI_MAX_LATENT} here, up to {MAX_LATENT} from the CLI (--latent-dim)",
        "Latent size",
        lo=1,
        hi=UI_MAX_LATENT,
    )
    beta: float = option(1.0, "weight of the KL term", "β (KL weight)", lo=0.0, hi=100.0, step=0.5)
    recon: str = option("bce", "reconstruction loss", "Reconstruction loss", choices=RECON_LOSSES)
    n_classes: int = 10  # from the dataset
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
            if f.metadata.get("count"):  # a count of items (e.g. dataset_size), not a layer width or shape
                continue
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
        check_number("beta", self.beta)
        if self.recon not in RECON_LOSSES:
            raise ConfigError(f"recon must be one of {RECON_LOSSES}, got {self.recon!r}")
        if not isinstance(self.n_classes, int) or not 1 <= self.n_classes <= 1000:
            raise ConfigError(f"n_classes must be an int from 1 to 1000, got {self.n_classes!r}")
        check_number("anchor_rate", self.anchor_rate)
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
