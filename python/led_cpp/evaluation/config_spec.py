"""Decoding configs as text: ``name[:key=value]...``, the keys being the config dataclass's fields."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Callable

from ..config import LEDConfig, SamplingConfig

_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def to_bool(text: str) -> bool:
    """1/0, true/false, yes/no, on/off (any case) as a bool."""
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"not a boolean: {text!r}") from None


_VALUE_TYPES = {"bool": bool, "int": int, "float": float, "str": str}


def field_types(config_class: type) -> dict[str, type]:
    """Each field of a config dataclass with its value type (``X | None`` and ``Optional[X]`` read
    as X), in declaration order; fields whose values are not a bool, int, float or str are left out.
    The annotations are read as written (the config modules postpone them), so this works the same
    on every Python the package supports, where evaluating ``X | None`` needs 3.10."""
    types = {}
    for f in dataclasses.fields(config_class):
        written = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        optional = re.fullmatch(r"(?:typing\.)?Optional\[(\w+)\]", written.strip())
        names = [optional.group(1)] if optional else [part.strip() for part in written.split("|")]
        names = [name for name in names if name != "None"]
        if len(names) == 1 and names[0] in _VALUE_TYPES:
            types[f.name] = _VALUE_TYPES[names[0]]
    return types


def _value_parser(kind: type) -> Callable[[str], Any]:
    return to_bool if kind is bool else kind


#: Per config name, its parameters in field order, each with the function that reads its text.
CONFIG_KEYS: dict[str, dict[str, Callable[[str], Any]]] = {
    "greedy": {},
    "standard": {name: _value_parser(kind) for name, kind in field_types(SamplingConfig).items()},
    "led": {name: _value_parser(kind) for name, kind in field_types(LEDConfig).items()},
}


@dataclass(frozen=True)
class ConfigSpec:
    """A decoding config by name plus overrides of its defaults.

    Text form: ``name[:key=value]...`` with name ``greedy`` (SamplingConfig with
    temperature 0), ``standard`` (SamplingConfig's fields: temperature, top_k, top_p,
    min_p) or ``led`` (LEDConfig's fields: temperature, d, k, ln, exploit, think_only,
    think_end, depth_rule, fixed_depth, layer_counting); booleans are
    1/0/true/false/yes/no/on/off.  Shorthand: a bare value right after
    ``depth_rule=fixed`` is the fixed depth (``led:depth_rule=fixed:3``).
    Examples: ``standard``, ``led:d=4:k=16``, ``led:depth_rule=random``.
    """

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """Canonical text form (keys in the order of CONFIG_KEYS)."""
        return ":".join([self.name] + [f"{k}={_format(v)}" for k, v in self.params])

    @property
    def dirname(self) -> str:
        return re.sub(r"[^\w=.+-]", "_", self.label)

    def build(self) -> SamplingConfig | LEDConfig:
        """The config object."""
        values = dict(self.params)
        if self.name == "greedy":
            return SamplingConfig(temperature=0.0)
        if self.name == "standard":
            return SamplingConfig(**values)
        return LEDConfig(**values)

    def with_params(self, **overrides: Any) -> ConfigSpec:
        """A copy with more parameters (None values are ignored)."""
        keys = CONFIG_KEYS[self.name]
        merged = dict(self.params)
        for k, v in overrides.items():
            if v is None:
                continue
            if k not in keys:
                raise ValueError(f"config {self.name!r} has no parameter {k!r}")
            merged[k] = v
        return ConfigSpec(self.name, tuple((k, merged[k]) for k in keys if k in merged))


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def parse_config_spec(text: str, *, temperature: float | None = None) -> ConfigSpec:
    """Parse ``name[:key=value]...`` (see :class:`ConfigSpec`).  ``temperature``,
    when given, is the default temperature of a non-greedy spec that sets none."""
    parts = [p.strip() for p in text.strip().split(":")]
    name = parts[0].lower()
    if name not in CONFIG_KEYS:
        raise ValueError(f"unknown config {parts[0]!r} in {text!r}; use one of {', '.join(CONFIG_KEYS)}")
    keys = CONFIG_KEYS[name]
    params: dict[str, Any] = {}
    previous = None
    for part in parts[1:]:
        if "=" in part:
            key, value = (s.strip() for s in part.split("=", 1))
            key = key.replace("-", "_")
        elif previous == "depth_rule" and params.get("depth_rule") == "fixed":
            key, value = "fixed_depth", part
        else:
            raise ValueError(f"{text!r}: expected key=value, got {part!r}")
        if key not in keys:
            known = ", ".join(keys) or "none"
            raise ValueError(f"{text!r}: config {name!r} has no parameter {key!r} (parameters: {known})")
        if key in params:
            raise ValueError(f"{text!r}: {key} given twice")
        try:
            params[key] = keys[key](value)
        except ValueError:
            raise ValueError(f"{text!r}: bad value for {key}: {value!r}") from None
        previous = key
    if params.get("depth_rule") == "fixed" and "fixed_depth" not in params:
        raise ValueError(f"{text!r}: depth_rule=fixed needs a depth (led:depth_rule=fixed:3 or :fixed_depth=3)")
    spec = ConfigSpec(name).with_params(**params)
    if name != "greedy" and "temperature" not in params:
        spec = spec.with_params(temperature=temperature)
    return spec


def is_greedy(config: Any) -> bool:
    """Whether a config samples at temperature 0 (greedy: no seed needed)."""
    return getattr(config, "temperature", None) == 0


def resolve_config(config: str | ConfigSpec | Any) -> tuple[str, Any]:
    """(label, config object) for a spec text, a ConfigSpec or a config object."""
    if isinstance(config, str):
        config = parse_config_spec(config)
    if isinstance(config, ConfigSpec):
        return config.label, config.build()
    if isinstance(config, LEDConfig):
        return "led", config
    return ("greedy" if is_greedy(config) else "standard"), config


def config_dict(config: Any) -> dict:
    """A config object as JSON-ready values, its type name first (part of a run's identity)."""
    if dataclasses.is_dataclass(config):
        fields = dataclasses.asdict(config)
    else:
        fields = {k: v for k, v in vars(config).items() if not k.startswith("_")}
    return {"type": type(config).__name__, **fields}
