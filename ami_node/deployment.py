"""Where the AMI contracts live on a chain: the Deployment record `ami deploy` writes and everyone reads."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_PATH = Path(".ami/deployment.json")
ENV_VAR = "AMI_DEPLOYMENT"


class DeploymentError(Exception):
    """The deployment file is missing or unreadable; the message says which file and what to do."""


class Deployment(BaseModel):
    """Addresses of one deployment of the AMI contracts (SS58 strings) and the chain it is on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="websocket URL of the node the contracts were deployed through")
    genesis_hash: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$", description="genesis hash of that chain")
    nft: str = Field(min_length=1, description="ami_nft contract address (SS58)")
    rewards: str = Field(min_length=1, description="ami_rewards contract address (SS58)")
    deployer: str = Field(min_length=1, description="account that instantiated both contracts (SS58)")

    def save(self, path: Path | str | None = None) -> Path:
        """Write the record as JSON (atomically: a crash never leaves half a file) and return its path."""
        target = resolve_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, path: Path | str | None = None) -> Deployment:
        """Read a record written by `save`; DeploymentError with a hint when it is absent or invalid."""
        source = resolve_path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DeploymentError(
                f"no deployment file at {source}: run `ami deploy` first, or point {ENV_VAR} / --deployment "
                "at an existing one"
            ) from None
        except OSError as exc:
            raise DeploymentError(f"cannot read deployment file {source}: {exc.strerror}") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise DeploymentError(
                f"deployment file {source} is not valid: {where}: {first['msg']}; re-run `ami deploy`"
            ) from None


def resolve_path(path: Path | str | None = None) -> Path:
    """The explicit path, else $AMI_DEPLOYMENT, else .ami/deployment.json."""
    if path is not None and str(path) != "":
        return Path(path)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_PATH
