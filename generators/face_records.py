"""Face landmarks and region masks on the records of a source's images, for every source.

The sources that draw or read images (``folder``, ``dataset``, ``stylegan2``, ``stylegan3``)
analyse each image's face (:mod:`~facebench.generators.faces`, the ``faces`` extra) when an
artifact needs landmarks or region masks, or when asked to, and record what was found as
``parametric`` records it: ``landmarks``, ``masks`` (face, hair, background) and
``meta["face"]`` (how it was analysed, the face box and the detector's score).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import faces as face_analysis
from .artifacts import ARTIFACTS, ArtifactError, FakeSpec
from ..harness.contracts.types import Record

#: ``faces`` values: analyse faces when an artifact needs landmarks or regions, always, never.
FACES_MODES = ("auto", "on", "off")
#: What an artifact may need that face analysis supplies.
FACE_NEEDS = ("landmarks", "regions")


def check_faces_mode(faces: object, modes: Sequence[str] = FACES_MODES, error: type[Exception] = ValueError) -> str:
    """``faces`` when it is one of ``modes``; else ``error`` of one line naming them."""
    if faces not in modes:
        raise error(f"faces must be one of {', '.join(modes)}, got {faces!r}")
    return str(faces)


def artifacts_needing_faces(fake_specs: Sequence[FakeSpec]) -> list[str]:
    """The artifacts of ``fake_specs`` that need landmarks or region masks, in spec order."""
    names = [name for spec in fake_specs for name, _ in spec.artifacts
             if any(need in getattr(ARTIFACTS[name], "needs", ()) for need in FACE_NEEDS)]
    return list(dict.fromkeys(names))


def analyses_faces(faces: str, fake_specs: Sequence[FakeSpec]) -> bool:
    """Whether a source with option ``faces`` and artifacts ``fake_specs`` analyses every image's face."""
    return faces == "on" or (faces == "auto" and bool(artifacts_needing_faces(fake_specs)))


def faces_config(faces: str, default: str = "auto") -> dict[str, str]:
    """What a source's ``config()`` adds for ``faces``: nothing for the ``default``, so the cache
    keys of corpora made before the option stay as they were."""
    return {} if faces == default else {"faces": faces}


def with_faces(image: np.ndarray, record: Record, name: str, needing: Sequence[str] = (), *,
               images: str = "images", fix: str = "drop the artifact") -> Record:
    """``record`` with the landmarks and face/hair/background masks of ``image``'s face, and
    ``meta["face"]``; ``record`` itself where no face is found and ``needing`` is empty.

    ``name`` names the image in errors, ``needing`` the artifacts that need the face (see
    :func:`artifacts_needing_faces`), ``images`` what the source's images are and ``fix`` what to
    do about an image without a face. Raises :class:`ArtifactError` (one line) without the
    ``faces`` extra, or where no face is found and an artifact needs one.
    """
    try:
        face_analysis.require()
    except face_analysis.FacesUnavailable:
        what = f"artifact {needing[0]!r} on {images} needs" if needing else "faces='on' needs"
        raise ArtifactError(f"{what} face landmarks and region masks: {face_analysis.FACES_EXTRA}") from None
    found = face_analysis.analyse_face(image)
    if found is None:
        if needing:
            raise ArtifactError(f"artifact {needing[0]!r} needs face landmarks, and no face was found in image "
                                f"{name!r}; {fix}")
        return record
    box = [round(float(v), 2) for v in found.box]
    meta = {**record.meta, "face": {"analysis": face_analysis.ANALYSIS, "box": box, "score": round(found.score, 4)}}
    return record.with_changes(landmarks=found.landmarks, masks=dict(found.masks), meta=meta)
