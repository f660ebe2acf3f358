"""Where settings come from besides the environment: ``RELAY_<NAME>_FILE`` (a file holding the
value, for Docker and Kubernetes secrets) and the file named by ``RELAY_CONFIG`` (TOML or YAML).
A source that cannot be read or parsed is a ``ConfigError``, one line naming it."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

ENV_PREFIX = "RELAY_"


class ConfigError(ValueError):
    """A configuration source (RELAY_CONFIG, a RELAY_<NAME>_FILE) that cannot be read or parsed."""


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


class FileValueSource(PydanticBaseSettingsSource):
    """``RELAY_<NAME>_FILE=/run/secrets/x``: the value is the file's content, stripped."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"{ENV_PREFIX}{field_name.upper()}_FILE")
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text().strip(), field_name, False
        except OSError as exc:
            raise ConfigError(
                f"{ENV_PREFIX}{field_name.upper()}_FILE: cannot read {path}: {exc.strerror}"
            ) from None

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class ConfigFileSource(PydanticBaseSettingsSource):
    """The file named by ``RELAY_CONFIG``: TOML (``.toml``) or YAML, keys as the field names."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ reads the whole file

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get(f"{ENV_PREFIX}CONFIG")
        if not path:
            return {}
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"RELAY_CONFIG: cannot read {path}: {exc.strerror}") from None
        try:
            data = tomllib.loads(text) if path.endswith(".toml") else yaml.safe_load(text)
        except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"RELAY_CONFIG: {path} is not valid: {_one_line(exc)}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"RELAY_CONFIG: {path} must hold a mapping of settings")
        return {str(key).lower(): value for key, value in data.items()}
