"""A suite, as TOML text, with one corpus per subset of a dataset: what ``facebench dataset scan`` prints."""

from __future__ import annotations

import json
from typing import Any

from .layouts import ALL, Dataset, DatasetError

#: The detectors the written suite starts with (the user adds more).
STARTER_DETECTORS = ("spectrum", "dct")


def toml_value(value: Any) -> str:
    """A string, integer or boolean as TOML (a JSON string is a TOML basic string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int) else json.dumps(str(value))


def suite_text(dataset: Dataset, params: dict[str, Any]) -> str:
    """A runnable suite: comments naming the layout and each subset's counts, one ``dataset``
    corpus per usable subset (all images), and :data:`STARTER_DETECTORS`."""
    subsets = dataset.subsets()
    lines = [f"# {dataset.root}: layout {dataset.layout}, {len(subsets)} subset(s)"]
    usable = []
    for name, (n_real, n_fake) in subsets.items():
        try:
            dataset.select(name)
        except DatasetError as exc:
            lines.append(f"# {name}: {n_real} real, {n_fake} fake; left out: {exc}")
            continue
        usable.append((name, n_real + n_fake))
        lines.append(f"# {name}: {n_real} real, {n_fake} fake")
    lines += ["", f"name = {toml_value(dataset.root.name or 'dataset')}",
              f"description = {toml_value(f'Detectors on {dataset.root.name}, one corpus per generator ({dataset.layout} layout).')}",
              "", "[split]", "test_fraction = 0.5", "seed = 0"]
    for name, count in usable:
        lines += ["", "[[generators]]", 'name = "dataset"', f"label = {toml_value(name)}", f"count = {count}",
                  "batch_size = 32", "[generators.params]",
                  f"path = {toml_value(dataset.source or dataset.root)}", f"subset = {toml_value(name)}"]
        lines += [f"{key} = {toml_value(value)}" for key, value in params.items()]
    if not usable:
        lines += ["", f"# no subset holds both real and fake images; nothing to benchmark (subset {ALL!r} pools them)"]
    for detector in STARTER_DETECTORS:
        lines += ["", "[[detectors]]", f"name = {toml_value(detector)}"]
    return "\n".join(lines) + "\n"
