"""The worker's configuration: a validated pydantic-settings model, from a TOML/YAML file and `AMI_*` env."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from offchain.economics import PolicyParams
from pallets_spec.vocabulary import PayoutKind


class ConfigError(ValueError):
    """The configuration is invalid; the message names every bad field and what it expects."""


class RewardBudgets(BaseModel):
    """MINT (smallest units) per epoch per reward kind; each budget is paid exactly when anyone earns it."""

    create: int = Field(default=400_000, ge=0)
    listen: int = Field(default=300_000, ge=0)
    discovery: int = Field(default=100_000, ge=0)
    engagement: int = Field(default=100_000, ge=0)
    royalty: int = Field(default=100_000, ge=0)

    def by_kind(self) -> dict[PayoutKind, int]:
        """The budgets as the reward policy takes them."""
        return {kind: getattr(self, kind.label) for kind in PayoutKind}


class RewardCaps(BaseModel):
    """Anti-farming limits of the reward policy (see docs/worker.md)."""

    # The defaults are the reward policy's own (offchain.economics.PolicyParams).
    listen_reward_per_wallet: int = Field(
        default=PolicyParams.listen_reward_per_wallet, ge=1, description="MINT per wallet per epoch"
    )
    listen_credits_per_wallet: int = Field(
        default=PolicyParams.listen_credits_per_wallet, ge=1, description="credits; one full track = 1000"
    )
    min_listen_seconds: int = Field(default=PolicyParams.min_listen_seconds, ge=1)
    min_quality_bp: int = Field(default=PolicyParams.min_quality_bp, ge=0, le=10_000)
    sybil_group_min_size: int = Field(default=PolicyParams.sybil_group_min_size, ge=2)
    discovery_early_listeners: int = Field(default=PolicyParams.discovery_early_listeners, ge=1)
    adoption_trust: bool = Field(
        default=PolicyParams.adoption_trust, description="also apply scoring.adoption's farm trust"
    )


class WorkerSettings(BaseSettings):
    """Everything `ami run` needs. Env names: `AMI_<FIELD>`, nested with `__` (e.g. `AMI_BUDGETS__LISTEN`)."""

    model_config = SettingsConfigDict(
        env_prefix="AMI_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    node_url: str = "ws://127.0.0.1:9944"
    ipfs_api_url: str = "http://127.0.0.1:5001"
    deployment: Path = Path(".ami/deployment.json")
    # The one key convention of every command: env AMI_KEY holds the key or the path of a key file (a docker
    # secret, a keystore JSON); AMI_KEY_PASSWORD decrypts a keystore. No key: //Alice on a loopback node only.
    signing_key: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("signing_key", "AMI_KEY")
    )
    signing_key_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("signing_key_password", "AMI_KEY_PASSWORD")
    )
    db_path: Path = Path(".ami/worker.sqlite")
    epoch_blocks: int = Field(default=100, ge=1, description="epoch length in finalized blocks")
    budgets: RewardBudgets = RewardBudgets()
    caps: RewardCaps = RewardCaps()
    max_audio_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    block_queue_size: int = Field(default=256, ge=1)
    scoring_queue_size: int = Field(default=32, ge=1)
    ingest_batch_blocks: int = Field(default=64, ge=1, description="blocks written per SQLite transaction")
    scoring_workers: int = Field(default=1, ge=1, le=64, description="1 keeps the catalogue in mint order")
    payout_batch_size: int = Field(default=200, ge=1)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=9615, ge=0, le=65535)
    device: Literal["cpu", "cuda", "auto"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = True
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)

    @field_validator("node_url")
    @classmethod
    def _ws_url(cls, v: str) -> str:
        if not v.startswith(("ws://", "wss://")):
            raise ValueError("must be a websocket URL starting with ws:// or wss://")
        return v

    @field_validator("ipfs_api_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an IPFS RPC API URL starting with http:// or https://")
        return v.rstrip("/")

    @field_validator("http_host")
    @classmethod
    def _host(cls, v: str) -> str:
        if v == "localhost":
            return v
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError("must be an IP address to listen on, e.g. 127.0.0.1 or 0.0.0.0") from None
        return v

    @model_validator(mode="after")
    def _key_present(self) -> WorkerSettings:
        if not self.signing_key.get_secret_value().strip():
            host = urlparse(self.node_url).hostname or ""
            if host not in ("127.0.0.1", "::1", "localhost"):
                raise ValueError(
                    "no signing key: set AMI_KEY (a mnemonic, a 0x seed or the path of a key file) or "
                    "signing_key in the config file; the dev key //Alice is only used on a loopback node"
                )
            self.signing_key = SecretStr("//Alice")
        return self

    @model_validator(mode="after")
    def _backoff_order(self) -> WorkerSettings:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments > environment > config file > defaults.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        # The file is chosen at load time: `load_settings(path)` names it in a subclass's model_config.
        if settings_cls.model_config.get("yaml_file"):
            sources.append(YamlConfigSettingsSource(settings_cls))
        elif settings_cls.model_config.get("toml_file"):
            sources.append(TomlConfigSettingsSource(settings_cls))
        return tuple(sources)

    def policy(self) -> PolicyParams:
        """The reward policy's parameters: these budgets and caps."""
        return PolicyParams(budgets=self.budgets.by_kind(), **self.caps.model_dump())

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as JSON-able data, secrets masked."""
        data = self.model_dump(mode="json")
        data["signing_key"] = "**********"
        if self.signing_key_password is not None:
            data["signing_key_password"] = "**********"
        return data


def torch_device(device: str) -> str | None:
    """The scoring engine's device for a `device` setting: "auto" is None (CUDA if there is one, else CPU)."""
    return None if device == "auto" else device


def _format_errors(exc: ValidationError, origin: str) -> str:
    lines = [f"invalid worker configuration ({origin}):"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        env = "AMI_" + "__".join(str(p) for p in err["loc"]).upper() if err["loc"] else ""
        env = {"AMI_SIGNING_KEY": "AMI_KEY", "AMI_SIGNING_KEY_PASSWORD": "AMI_KEY_PASSWORD"}.get(env, env)
        hint = f" (env {env})" if env else ""
        lines.append(f"  {loc}{hint}: {err['msg']}")
    return "\n".join(lines)


def _settings_class(config_file: Path | None) -> type[WorkerSettings]:
    """WorkerSettings, or a subclass of it that also reads `config_file` (TOML, or YAML by its suffix)."""
    if config_file is None:
        return WorkerSettings
    config = SettingsConfigDict(**WorkerSettings.model_config)
    if config_file.suffix in (".yaml", ".yml"):
        config["yaml_file"] = config_file
    else:
        config["toml_file"] = config_file

    class FileSettings(WorkerSettings):
        model_config = config

    FileSettings.__name__ = FileSettings.__qualname__ = "WorkerSettings"
    return FileSettings


def load_settings(config_file: Path | None = None, **overrides: Any) -> WorkerSettings:
    """Read the settings; raise ConfigError with one line per bad field (never echoing secret values)."""
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file not found: {config_file}")
        if config_file.suffix not in (".toml", ".yaml", ".yml"):
            raise ConfigError(f"config file must be .toml, .yaml or .yml: {config_file}")
    origin = f"file {config_file} + environment" if config_file else "environment"
    try:
        return _settings_class(config_file)(**overrides)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origin)) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML/YAML
        raise ConfigError(f"cannot read config file {config_file}: {exc}") from None


DEFAULTS = WorkerSettings.model_construct()
"""The settings' declared defaults (built without reading a file or the environment, and not validated)."""
