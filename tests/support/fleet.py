"""A fleet of sandbox accounts for the Dagster tests: an accounts file naming each sandbox's hosts and key references
(account ``a`` keeps its key in files, the others in variables the file names), and Settings that use it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipeline.settings import Settings


def accounts_file(tmp_path: Path, sandboxes: dict, secrets: dict[str, str], start: date) -> Path:
    lines = [f'[defaults]\nstart_date = "{start.isoformat()}"\n']
    for name, sx in sandboxes.items():
        (tmp_path / f"{name}.key").write_text(sx.cfg.api_key + "\n")
        (tmp_path / f"{name}.secret").write_text(secrets[name] + "\n")
        keys = (
            f'api_key_file = "{name}.key"\napi_secret_file = "{name}.secret"\n'
            if name == "a"
            else f'api_key_env = "FLEET_{name.upper()}_KEY"\napi_secret_env = "FLEET_{name.upper()}_SECRET"\n'
        )
        lines.append(
            f"[accounts.{name}]\n{keys}[accounts.{name}.hosts]\n"
            f'spot_url = "{sx.url}"\nws_api_url = "{sx.ws_url}"\nfutures_url = "{sx.url}"\npapi_url = "{sx.url}"\n'
        )
    path = tmp_path / "accounts.toml"
    path.write_text("\n".join(lines))
    return path


def fleet_settings(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sandboxes: dict,
    secrets: dict[str, str],
    *,
    start: date,
    time_scale: float,
) -> Settings:
    """Settings of a fleet over ``sandboxes``; the variables that hold the keys of accounts other than ``a`` are set
    in the environment too, where Dagster resolves them when a step starts."""
    variables = {
        f"FLEET_{n.upper()}_{k}": v
        for n, sx in sandboxes.items()
        if n != "a"
        for k, v in (("KEY", sx.cfg.api_key), ("SECRET", secrets[n]))
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    env = {
        "ORDERLAKE_ACCOUNTS_FILE": str(accounts_file(tmp_path, sandboxes, secrets, start)),
        "ORDERLAKE_DATA_DIR": str(tmp_path / "data"),
        "ORDERLAKE_BUDGET_DIR": str(tmp_path / "budget"),
        "ORDERLAKE_ALLOW_HTTP_LOOPBACK": "1",
        "ORDERLAKE_TIME_SCALE": str(time_scale),
        **variables,
    }
    return Settings.from_env(env)
