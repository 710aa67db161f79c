"""Name registries: protections and countermeasures are looked up by name.

A *spec* string selects a member and optionally its parameters, so notebooks and the
experiment grid can sweep over plain strings::

    "lowpass"                  -> get("lowpass")
    "lowpass:0.25"             -> get("lowpass", cutoff=0.25)   (the member's primary parameter)
    "lowpass:cutoff=0.25,basis=fft"
"""
from __future__ import annotations

import ast
import inspect
from typing import Any, Callable, Dict, Tuple


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word such as fft stays a string


def parse_spec(spec: str) -> Tuple[str, Dict[str, Any]]:
    """Split ``"name:arg"`` / ``"name:k=v,k=v"`` into ``(name, kwargs)``.

    A single bare value is returned under the key ``None``; the registry maps it to the
    member's primary parameter.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a registry spec must be a non-empty string, got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    kwargs: Dict[Any, Any] = {}
    if rest:
        for part in rest.split(","):
            key, eq, value = part.partition("=")
            if eq:
                kwargs[key.strip()] = _literal(value.strip())
            elif None in kwargs:
                raise ValueError(f"spec {spec!r}: only one positional value is allowed")
            else:
                kwargs[None] = _literal(part.strip())
    return name.strip(), kwargs


class Configurable:
    """scikit-learn's habit: every ``__init__`` argument is stored as an attribute of the same
    name, so :meth:`config` can rebuild the object and hash it for caching."""

    name = "?"       # set by Registry.register
    primary = None   # the parameter a spec's bare value sets ("lowpass:0.25" -> cutoff)
    # parameters added after runs were cached and shipped: left out of config() while at these
    # values, so every older record's key (a hash of the config) stays what it was
    later_defaults: dict = {}

    def config(self) -> dict:
        """The constructor arguments that rebuild this object (those in ``later_defaults``
        only where they differ from it)."""
        params = inspect.signature(type(self).__init__).parameters
        later = self.later_defaults
        return {p: getattr(self, p) for p in params
                if p != "self" and not (p in later and getattr(self, p) == later[p])}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Registry:
    """A mapping from names to classes (or factories) of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._members: Dict[str, Callable] = {}

    def register(self, name: str, primary: str | None = None):
        """Class decorator: ``@REGISTRY.register("lowpass", primary="cutoff")``."""

        def deco(cls):
            if name in self._members:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            cls.name = name
            cls.primary = primary
            self._members[name] = cls
            return cls

        return deco

    def names(self) -> list:
        return sorted(self._members)

    def cls(self, name: str):
        if name not in self._members:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._members[name]

    def get(self, spec: str, **kwargs):
        name, spec_kwargs = parse_spec(spec)
        cls = self.cls(name)
        if None in spec_kwargs:
            if cls.primary is None:
                raise ValueError(f"{self.kind} {name!r} takes no positional value in {spec!r}")
            spec_kwargs[cls.primary] = spec_kwargs.pop(None)
        spec_kwargs.update(kwargs)
        params = inspect.signature(cls.__init__).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            unknown = sorted(set(spec_kwargs) - set(params) - {"self"})
            if unknown:
                allowed = [p for p in params if p != "self"]
                raise ValueError(
                    f"{self.kind} {name!r} has no parameter(s) {unknown}; it takes {allowed}"
                )
        try:
            return cls(**spec_kwargs)
        except ValueError as e:  # a bad parameter value: say which spec it came from
            msg = str(e.args[0]) if e.args else str(e)
            if msg.startswith(f"{self.kind} "):  # a nested spec (a chain's member) named itself
                raise
            raise ValueError(f"{self.kind} {spec.strip()!r}: {msg}") from e


def check_count(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int, or a one-line ValueError naming the parameter: a whole number (an
    int, or a float such as ``3.0``; not a bool or a string) of at least ``minimum``. For the
    counts of an ``__init__`` (steps, epochs, batch sizes), where 0 or fewer would silently do
    nothing, divide by zero or cache an empty fit."""
    try:
        number = int(value)
        ok = number == value and not isinstance(value, (bool, str))
    except (TypeError, ValueError, OverflowError):
        number, ok = None, False
    if not ok or number < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return number
