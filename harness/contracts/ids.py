"""The record-id format. A pair id groups a seed's real and fakes, and the split is made by pair,
so this format decides which images share a side of the split: one definition for every generator."""


def pair_id(source: str, seed: int) -> str:
    """The counterfactual group of ``seed`` from generator ``source`` (``parametric-00000042``)."""
    return f"{source}-{int(seed):08d}"


def record_id(source: str, seed: int, role: str) -> str:
    """One image's id: its pair id and its role in the pair (``real``, ``fake``, an artifact's name)."""
    return f"{pair_id(source, seed)}-{role}"
