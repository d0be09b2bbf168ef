"""The one plugin pattern: a family of plugins (sensors, backends, formats, heads) is a :class:`Registry`.

Why: eventclip picks a camera, an inference engine and a file format by name, from YAML and from
the command line. With one registry per family the names, the config schema, the ``--flag``
choices and the "why is it unavailable" answers all come from the plugins themselves, so adding
one touches one file (in the style of Frigate's detectors).

A plugin is one module inside its family's package that registers itself at import::

    # src/eventclip/sensors/mycam.py
    class MyCamConfig(SourceConfig):
        kind: Literal["mycam"] = "mycam"      # the discriminator: the plugin's name
        serial: str | None = None

    def _unavailable() -> str | None:         # cheap: find_spec, never import the SDK here
        return missing("mycam_sdk", "pip install mycam-sdk")

    @SENSORS.register(config=MyCamConfig, unavailable=_unavailable, capabilities={"live": True})
    class MyCamSource(LiveSource): ...

The registry finds plugin modules with :mod:`pkgutil` over its package (every public module is
imported on the first question asked of it), so there is no list of modules to keep in step. A
plugin module must therefore be cheap to import: heavy optional dependencies (torch, onnxruntime,
tensorrt, metavision, dv_processing, cv2) are imported inside the functions that use them.

How a family plugs in: create ``NAME = Registry("family", "eventclip.package")`` in the package's
base module, decorate each plugin with ``NAME.register(...)`` (or call ``NAME.add``), and read
``NAME.names()`` / ``NAME.choices()`` for CLI choices and ``NAME.config_union()`` for a pydantic
field. Families today: ``eventclip.sensors.SENSORS`` (config: the source's settings),
``eventclip.runtime.BACKENDS`` (config: the backend's settings; ``auto`` is a choice, not a
plugin), ``eventclip.io.FORMATS`` (no config: a format is chosen by name or by sniffing, its
readers take no options). Heads join the same way: one module per head in ``heads/`` registering
its class with its config model.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Generic, TypeVar, Union

from pydantic import BaseModel, Field

from eventclip.errors import ConfigError

T = TypeVar("T")

Unavailable = Callable[[], "str | None"]
"""Returns None when the plugin can run here, else one sentence: what is missing and how to get it."""


def missing(modules: str | tuple[str, ...], how: str) -> str | None:
    """None when every top-level module in ``modules`` is installed, else "<names> not installed: <how>".

    Uses :func:`importlib.util.find_spec` so listing plugins never imports a heavy SDK.
    """
    names = (modules,) if isinstance(modules, str) else modules
    absent = [name for name in names if importlib.util.find_spec(name.split(".")[0]) is None]
    if not absent:
        return None
    return f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed: {how}"


def _always() -> str | None:
    return None


@dataclass(frozen=True)
class Plugin(Generic[T]):
    """One registered plugin: its name, what it builds, its config model, availability and capabilities."""

    kind: str
    obj: T
    """What the family builds from: a Source class, a Backend class, a FormatSpec."""
    config: type[BaseModel] | None
    """Pydantic model with ``kind: Literal[kind]``; None for families without settings (formats)."""
    unavailable: Unavailable
    capabilities: Mapping[str, Any]
    module: str
    aliases: tuple[str, ...] = field(default=())


class Registry(Generic[T]):
    """Name -> plugin for one family. ``registry[kind]`` is what the plugin registered (a class, a spec).

    ``extra_choices`` are names the family accepts that are not plugins (``auto`` for backends);
    they appear in :meth:`choices` only. ``error`` is the exception raised for an unknown name
    (:class:`ConfigError` unless the family has its own, e.g. ``UnknownFormatError``).
    """

    def __init__(self, family: str, package: str, *, extra_choices: tuple[str, ...] = (),
                 error: type[Exception] = ConfigError) -> None:
        self.family = family
        self.package = package
        self.extra_choices = extra_choices
        self.error = error
        self._plugins: dict[str, Plugin[T]] = {}
        self._aliases: dict[str, str] = {}
        self._discovered = False

    def register(self, *, kind: str | None = None, config: type[BaseModel] | None = None,
                 unavailable: Unavailable = _always, capabilities: Mapping[str, Any] | None = None,
                 aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Class (or object) decorator: register the decorated thing; see :meth:`add`."""

        def decorate(obj: T) -> T:
            self.add(obj, kind=kind, config=config, unavailable=unavailable, capabilities=capabilities,
                     aliases=aliases)
            return obj

        return decorate

    def add(self, obj: T, *, kind: str | None = None, config: type[BaseModel] | None = None,
            unavailable: Unavailable = _always, capabilities: Mapping[str, Any] | None = None,
            aliases: tuple[str, ...] = ()) -> T:
        """Register ``obj`` under ``kind`` (default: the config's ``kind`` default) and its aliases."""
        if kind is None:
            if config is None or "kind" not in config.model_fields:
                raise TypeError(f"{self.family} plugin {obj!r}: give kind= or a config model with a 'kind' field")
            kind = str(config.model_fields["kind"].default)
        if kind in self._plugins and self._plugins[kind].obj is not obj:
            raise ValueError(f"{self.family} {kind!r} is registered twice "
                             f"({self._plugins[kind].module} and {getattr(obj, '__module__', '?')})")
        module = getattr(obj, "__module__", None) or type(obj).__module__
        self._plugins[kind] = Plugin(kind, obj, config, unavailable, MappingProxyType(dict(capabilities or {})),
                                     module, tuple(aliases))
        for alias in aliases:
            self._aliases.setdefault(alias, kind)
        return obj

    def remove(self, kind: str) -> None:
        """Forget ``kind`` and its aliases (tests register throwaway plugins)."""
        plugin = self._plugins.pop(kind)
        for alias in plugin.aliases:
            if self._aliases.get(alias) == kind:
                del self._aliases[alias]

    def discover(self) -> None:
        """Import every public module of the package once, so each plugin file registers itself.

        Only modules whose name starts with ``_`` are skipped (kernels, helpers).
        """
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def names(self) -> tuple[str, ...]:
        """The registered kinds, sorted (aliases not included)."""
        self.discover()
        return tuple(sorted(self._plugins))

    def choices(self) -> tuple[str, ...]:
        """What a user may type: the extra choices (``auto``) first, then :meth:`names`."""
        return (*self.extra_choices, *self.names())

    def get(self, kind: str) -> Plugin[T]:
        """The plugin registered as ``kind`` (or an alias); ``error`` naming the choices when unknown."""
        self.discover()
        name = self._aliases.get(kind, kind)
        if name not in self._plugins:
            raise self.error(f"unknown {self.family} {kind!r}; choose one of {', '.join(self.choices())}")
        return self._plugins[name]

    def __getitem__(self, kind: str) -> T:
        """What ``kind`` registered (a class, a spec); ``error`` naming the choices when unknown."""
        return self.get(kind).obj

    def __contains__(self, kind: object) -> bool:
        self.discover()
        return kind in self._plugins or kind in self._aliases

    def choices_where(self, **capabilities: Any) -> LazyChoices:
        """The kinds whose capabilities include every ``key=value`` given, for argparse ``choices=``.

        Lazy: the registry is only asked when the option is parsed or its help printed, so building
        the CLI's parsers does not import every plugin module of the family.
        """
        return LazyChoices(lambda: tuple(p.kind for p in self.plugins()
                                         if all(p.capabilities.get(k) == v for k, v in capabilities.items())))

    def plugins(self) -> tuple[Plugin[T], ...]:
        """Every plugin, in :meth:`names` order."""
        return tuple(self._plugins[name] for name in self.names())

    def values(self) -> tuple[T, ...]:
        """What every plugin registered, in :meth:`names` order."""
        return tuple(p.obj for p in self.plugins())

    def unavailable(self, kind: str) -> str | None:
        """None when ``kind`` can run on this machine, else why not and what to install."""
        return self.get(kind).unavailable()

    def capabilities(self, kind: str) -> Mapping[str, Any]:
        """What ``kind`` declared it can do (e.g. ``live``, ``devices``, ``precisions``, ``write``)."""
        return self.get(kind).capabilities

    def config_union(self, *extra: type[BaseModel]) -> Any:
        """The plugins' config models (and ``extra`` ones, e.g. ``auto``'s) as one pydantic type,
        discriminated by ``kind``."""
        models = [*extra, *(p.config for p in self.plugins() if p.config is not None)]
        if not models:
            raise TypeError(f"{self.family} plugins have no config models")
        if len(models) == 1:
            return models[0]
        return Annotated[Union[tuple(models)], Field(discriminator="kind")]  # noqa: UP007 - built at run time


class LazyChoices:
    """A sequence of names computed on first use (see :meth:`Registry.choices_where`)."""

    def __init__(self, compute: Callable[[], tuple[str, ...]]) -> None:
        self._compute = compute
        self._names: tuple[str, ...] | None = None

    def _get(self) -> tuple[str, ...]:
        if self._names is None:
            self._names = self._compute()
        return self._names

    def __contains__(self, name: object) -> bool:
        return name in self._get()

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())
