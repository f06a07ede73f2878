"""Command-line flags generated from a command's settings dataclass: the one flag -> field mapping.

``Flags(ServeSettings, "serve")`` defines one absl flag per field (help from ``field(metadata={"help":
...})``, the flag name from ``metadata["flag"]`` or the field name, the absl type from the type hint:
``Literal`` -> enum, bool, int, float, str, ``X | None``, tuples -> a comma list or, with
``metadata["multi"]``, a repeatable flag; a field with ``metadata["parse"]`` takes its text form),
plus ``--config FILE|NAME`` and repeatable ``--set key=value``. :meth:`Flags.resolve` then builds
the settings: dataclass defaults <- the ``serve:`` section of the config file <- flags given on the
command line <- ``--set serve.key=value``, every value checked by the one loader
(:mod:`pipelines.typed`). Dict, nested dataclass and ``metadata["flag"] = None`` fields have no flag
(set them in the file or with ``--set``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from absl import flags

from recsys.config import loading

T = TypeVar("T")
# Flags defined here belong to the module that asked for them (its `--help` lists them), not to this one.
flags.disclaim_key_flags()

CONFIG_HELP = ("YAML config file, or a named experiment (e.g. synthetic_small): the experiment's keys at the "
               "top level, each command's settings under its section (serve:, monitor:, ...)")
SET_HELP = ("override a config value, repeatable: --set {section}.KEY=VALUE (YAML-typed); with an "
            "experiment also --set train.steps=200")


def _optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (hint, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _text(value: Any) -> str:
    """A tuple default as the comma text a ``parse`` field takes."""
    return ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


class Flags(Generic[T]):
    """The flags of one settings dataclass in one ``FlagValues``; see the module docstring."""

    def __init__(self, cls: type[T], section: str, flag_values: flags.FlagValues = flags.FLAGS,
                 config_help: str = CONFIG_HELP) -> None:
        self.cls, self.section, self.fv = cls, section, flag_values
        self.names: dict[str, str] = {}  # field -> flag
        self._items: dict[str, type] = {}  # field -> item type of a comma-list flag
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            name = f.metadata.get("flag", f.name)
            if name is None:
                continue
            if self._define(name, f, hints[f.name]):
                self.names[f.name] = name
        if "config" not in flag_values:
            flags.DEFINE_string("config", None, config_help, flag_values=flag_values)
        if "set" not in flag_values:
            flags.DEFINE_multi_string("set", [], SET_HELP.format(section=section), flag_values=flag_values)
        if "print_config" not in flag_values:
            flags.DEFINE_bool("print_config", False, "print the resolved settings (a config file's YAML) and "
                              "exit", flag_values=flag_values)

    def _define(self, name: str, f: dataclasses.Field[Any], hint: Any) -> bool:
        hint, _ = _optional(hint)  # a None default is absl's "no default"; the loader checks the type
        default = _default(f)
        help_text = f.metadata.get("help", f.name.replace("_", " ")) + f"  [{self.section}.{f.name}]"
        kw: dict[str, Any] = {"flag_values": self.fv}
        origin = typing.get_origin(hint)
        if "parse" in f.metadata:
            flags.DEFINE_string(name, None if default is None else _text(default), help_text, **kw)
        elif origin is typing.Literal:
            flags.DEFINE_enum(name, default, [str(c) for c in typing.get_args(hint)], help_text, **kw)
        elif hint is bool:
            flags.DEFINE_bool(name, default, help_text, **kw)
        elif hint is int:
            flags.DEFINE_integer(name, default, help_text, **kw)
        elif hint is float:
            flags.DEFINE_float(name, default, help_text, **kw)
        elif hint is str:
            flags.DEFINE_string(name, default, help_text, **kw)
        elif origin in (tuple, list) and typing.get_args(hint)[0] in (str, int, float):
            item = typing.get_args(hint)[0]
            values = [str(v) for v in default or ()]
            if f.metadata.get("multi"):
                flags.DEFINE_multi_string(name, values, help_text, **kw)
            else:
                flags.DEFINE_list(name, values, help_text, **kw)
            self._items[f.name] = item
        else:  # dicts, nested dataclasses: the config file or --set only
            return False
        return True

    def explicit(self) -> dict[str, Any]:
        """The fields whose flags were given on the command line, as loader input."""
        out: dict[str, Any] = {}
        for field_name, flag in self.names.items():
            if not self.fv[flag].present:
                continue
            value: Any = self.fv[flag].value
            item = self._items.get(field_name)
            if item is not None and item is not str:
                try:
                    value = [item(v) for v in value]
                except ValueError:
                    raise loading.ConfigError(f"--{flag}: expected comma-separated {item.__name__}s, got "
                                              f"{','.join(value)!r}") from None
            out[field_name] = value
        return out

    def overrides(self, sections: Sequence[str] = ()) -> tuple[list[str], list[str]]:
        """``--set`` split into (the experiment's, this command's); another command's is an error."""
        sets: list[str] = self.fv["set"].value or []
        return loading.split_overrides(sets, (self.section, *sections))

    def resolve(self, config: Any = None) -> T:
        """The settings: defaults <- the config file's section <- explicit flags <- ``--set section.key``."""
        _, mine = self.overrides()
        config = self.fv["config"].value if config is None else config
        return loading.load_section(self.cls, self.section, config, mine, self.explicit())

    def experiment(self) -> Any:
        """The experiment of the same ``--config`` and the experiment's ``--set`` values."""
        theirs, _ = self.overrides()
        return loading.load(self.fv["config"].value, theirs)


    def load(self, command: str) -> T:
        """:meth:`resolve` for ``recsys <command>``: errors exit 2; ``--print_config`` prints and exits 0."""
        settings: T = resolve_or_exit(command, self.resolve)
        self.show({self.section: loading.to_dict(settings)})
        return settings

    def load_job(self, command: str) -> tuple[Any, T]:
        """(experiment, settings) of one ``--config``/``--set``, as :meth:`load`."""
        settings: T = resolve_or_exit(command, self.resolve)
        experiment = resolve_or_exit(command, self.experiment)
        self.show({**loading.to_dict(experiment), self.section: loading.to_dict(settings)})
        return experiment, settings

    def show(self, resolved: dict[str, Any]) -> None:
        """With ``--print_config``: print ``resolved`` as YAML and exit 0."""
        if self.fv["print_config"].value:
            import yaml

            print(yaml.safe_dump(resolved, sort_keys=False), end="")
            raise SystemExit(0)


def resolve_or_exit(command: str, build: Any) -> Any:
    """``build()``; a bad config or flag is ``recsys <command>: <reason>`` and exit 2 (a usage error)."""

    from recsys.cli import exits

    try:
        return build()
    except (loading.ConfigError, FileNotFoundError) as err:
        exits.usage(command, err)
