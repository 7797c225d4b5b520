"""Crash-safe saving and clear errors for files MuZero cannot load.

- :func:`atomic_open` writes to a temporary file in the target's folder and moves it over the target with
  ``os.replace`` only once it is complete, so a process killed while saving leaves the previous file
  intact (and at worst a hidden ``.<name>.<pid>.<token>.tmp`` file beside it).
- :func:`check_saved_algorithm` reads the policy class recorded in an SB3 zip and, when it is not a
  MuZero policy, names the algorithm whose ``load`` reads the file.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pathlib
import secrets
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import cloudpickle

# Subpackages of SB3 and sb3-contrib (from the policy's module path) → the algorithm class that saved it.
_ALGORITHMS = {
    "dqn": "stable_baselines3.DQN",
    "sac": "stable_baselines3.SAC",
    "td3": "stable_baselines3.TD3 (or DDPG)",
    "qrdqn": "sb3_contrib.QRDQN",
    "tqc": "sb3_contrib.TQC",
    "ppo_mask": "sb3_contrib.MaskablePPO",
    "ppo_recurrent": "sb3_contrib.RecurrentPPO",
    "crossq": "sb3_contrib.CrossQ",
    "ars": "sb3_contrib.ARS",
}


def sb3_target_path(path: str | os.PathLike, suffix: str) -> pathlib.Path:
    """The file SB3 writes for ``path``: ``.<suffix>`` is appended when ``path`` has no suffix at all."""
    path = pathlib.Path(path)
    return pathlib.Path(f"{path}.{suffix}") if path.suffix == "" else path


@contextmanager
def atomic_open(path: str | os.PathLike, suffix: str) -> Iterator[BinaryIO]:
    """Open a temporary file for writing that replaces ``path`` (SB3 naming, see :func:`sb3_target_path`)
    when the ``with`` block ends without an exception; on an exception the temporary file is removed
    and ``path`` is untouched.

    The data is flushed to disk (``fsync``) before the replace, so the new file is complete whenever it
    has the target's name; on POSIX the folder is synced after the replace.
    """
    target = sb3_target_path(path, suffix)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(temporary, "xb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if os.name == "posix":  # make the rename itself durable (a power loss could otherwise undo it)
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _saved_data(path: str | os.PathLike | io.BufferedIOBase) -> dict[str, Any] | None:
    """The JSON ``data`` entry of an SB3 zip, or None when it cannot be read (SB3 then reports why)."""
    try:
        if isinstance(path, (str, os.PathLike)):
            path = pathlib.Path(path)
            if not path.exists():
                path = pathlib.Path(f"{path}.zip")
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("data"))
        position = path.tell()
        try:
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("data"))
        finally:
            path.seek(position)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def _policy_class(entry: dict[str, Any]) -> type | None:
    """The serialized policy class, or None if it cannot be imported here."""
    try:
        policy_class = cloudpickle.loads(base64.b64decode(entry[":serialized:"]))
    except Exception:  # the class's package may not be installed here
        return None
    return policy_class if isinstance(policy_class, type) else None


def check_saved_algorithm(path: str | os.PathLike | io.BufferedIOBase, policy_base: type, algorithm: str) -> None:
    """Raise ``TypeError`` if the SB3 zip at ``path`` holds a policy that is not a ``policy_base`` subclass.

    The message names the policy class and the algorithm whose ``load`` reads the file. Unreadable files
    and policy classes that cannot be imported here pass silently: SB3's own ``load`` reports those.
    """
    data = _saved_data(path)
    if data is None or not isinstance(data.get("policy_class"), dict):
        return
    policy_class = _policy_class(data["policy_class"])
    if policy_class is None or issubclass(policy_class, policy_base):
        return
    module, name = policy_class.__module__, policy_class.__qualname__
    parts = module.split(".")
    if parts[-2:] == ["common", "policies"]:
        owner = "stable_baselines3.PPO" if "clip_range" in data else "stable_baselines3.A2C"
        if "cg_max_steps" in data:
            owner = "sb3_contrib.TRPO"
    else:
        owner = _ALGORITHMS.get(parts[-2] if len(parts) >= 2 else "", "the algorithm that saved it")
    raise TypeError(
        f"{path} holds a model with policy {module}.{name}, not a {algorithm} model: "
        f"load it with {owner}.load (then e.g. plan on top of it with gym_planning.agents.SearchAgent)"
    )
