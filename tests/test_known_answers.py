"""Known-answer tests of the controlled corpora (issue 3's acceptance list).

Every artifact of the parametric generator is checked against what it must do: where the
eyes go, where the spectrum peaks, which pixels change, and that nothing else does.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from facebench.generators.artifacts import ARTIFACTS, FFHQ_EYE_LEFT, FFHQ_EYE_RIGHT
from facebench.generators.parametric import ParametricGenerator
from facebench.generators.parametric.face import render_faces, sample_face_params
from facebench.harness.data.corpus import Corpus, CorpusWriter

RES = 256
SEEDS = range(4)


@pytest.fixture(scope="module")
def everything():
    """Reals and one fake per built-in artifact, camera on, at 256 px."""
    batch = ParametricGenerator(resolution=RES, artifacts="all").generate(SEEDS)
    reals = {r.pair: i for i, r in enumerate(batch.records) if r.label == 0}
    return batch, reals


def fakes_of(everything, name):
    batch, reals = everything
    for i, record in enumerate(batch.records):
        if record.label == 1 and set(record.artifacts) == {name}:
            yield batch.images[reals[record.pair]], batch.images[i], record


def jpeg_reach(mask: np.ndarray) -> np.ndarray:
    """Pixels a change inside ``mask`` can reach through the camera after the scene.

    Demosaicking spreads a change by one pixel; JPEG then re-codes every 16x16 macroblock
    (4:2:0 chroma) it touches, and the decoder's chroma upsampling reaches two pixels further.
    """
    grown = binary_dilation(mask, iterations=1)
    height, width = mask.shape
    blocks = grown.reshape(height // 16, 16, width // 16, 16).any(axis=(1, 3))
    grown = np.kron(blocks, np.ones((16, 16), bool))
    return binary_dilation(grown, iterations=2)


def test_eyes_fixed_fakes_put_the_eyes_on_ffhq_positions_and_reals_spread():
    batch = ParametricGenerator(resolution=RES, artifacts="eyes_fixed").generate(range(24))
    targets = {"eye_left": np.multiply(FFHQ_EYE_LEFT, RES), "eye_right": np.multiply(FFHQ_EYE_RIGHT, RES)}
    real_eyes = []
    for record in batch.records:
        for name, target in targets.items():
            if record.label == 1:
                assert np.abs(np.subtract(record.landmarks[name], target)).max() < 1.0, record.id
        if record.label == 0:
            real_eyes.append(record.landmarks["eye_left"])
    spread = np.std(real_eyes, axis=0)
    assert (spread > 4.0).all(), f"real eye positions hardly vary: std {spread} px"


def test_eyes_fixed_at_lower_strength_jitters_around_ffhq():
    batch = ParametricGenerator(resolution=RES, artifacts="eyes_fixed:0.5").generate(range(24))
    offsets = [np.subtract(r.landmarks["eye_left"], np.multiply(FFHQ_EYE_LEFT, RES)) for r in batch.records if r.label == 1]
    spread = np.std(offsets, axis=0)
    assert (spread > 1.0).all() and (spread < 0.04 * RES).all()


def _luma_power(image: np.ndarray) -> np.ndarray:
    luma = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.abs(np.fft.fft2(luma - luma.mean())) ** 2


def test_upsampling_fake_has_a_spectral_peak_6db_above_its_real():
    """Transposed-convolution upsampling by 2 (the default) peaks at 1/2 cycle per pixel.

    Nearest and bilinear upsampling null k/factor itself (their kernels' zeros) and leave
    replicas beside it instead, so the peak test is for the transposed kind.
    """
    kind, peak = "transposed", 0.5
    batch = ParametricGenerator(resolution=RES, artifacts="upsampling").generate(range(3))
    index = int(round(peak * RES))
    for i in range(3):
        real, fake = _luma_power(batch.images[i]), _luma_power(batch.images[3 + i])
        assert batch.records[3 + i].artifacts["upsampling"]["kind"] == kind
        for row, col in ((0, index), (index, 0)):  # the peak on both axes
            gain_db = 10 * np.log10(fake[row, col] / real[row, col])
            assert gain_db >= 6.0, f"{kind}: only {gain_db:.1f} dB at ({row}, {col})"


LOCAL = sorted(name for name, cls in ARTIFACTS.items() if cls.local)


def test_the_library_has_the_local_artifacts_the_issue_names():
    assert {"irregular_pupils", "highlight_mismatch", "iris_mismatch", "earring_single",
            "background_blur", "hair_bleed", "blob"} <= set(LOCAL)


@pytest.mark.parametrize("name", LOCAL)
def test_local_artifact_masks_are_non_empty_and_nothing_changes_outside(everything, name):
    found = 0
    for real, fake, record in fakes_of(everything, name):
        found += 1
        mask = record.masks[name]
        assert mask.dtype == bool and mask.shape == (RES, RES) and mask.any(), record.id
        assert not np.array_equal(real, fake), record.id
        outside = ~mask
        diff = np.abs(real.astype(int) - fake.astype(int)).max(axis=-1)
        if "scene" in ARTIFACTS[name].needs:
            # rendered before the camera: only the JPEG blocks the change touches may differ
            assert diff[~jpeg_reach(mask)].max() == 0, record.id
            assert np.percentile(diff[outside], 99) <= 8, f"{record.id}: large changes outside the mask"
        else:
            assert diff[outside].max() == 0, record.id
    assert found == len(SEEDS)


def test_every_artifact_is_recorded_with_its_strength_and_the_pairs_match(everything):
    batch, reals = everything
    fakes = [r for r in batch.records if r.label == 1]
    assert len(fakes) == len(ARTIFACTS) * len(SEEDS)
    assert {name for r in fakes for name in r.artifacts} == set(ARTIFACTS)
    for record in fakes:
        assert record.pair in reals and all(p["strength"] == 1.0 for p in record.artifacts.values())
    for record in batch.records:
        assert set(record.masks) >= {"face", "hair", "background"}


def test_camera_artifacts_change_the_whole_photo_only_by_noise_and_compression(everything):
    for real, fake, _ in fakes_of(everything, "missing_camera_noise"):
        residual = lambda x: x.astype(float) - np.roll(x.astype(float), 1, axis=1)  # noqa: E731
        assert residual(fake).std() < residual(real).std()
    for real, fake, _ in fakes_of(everything, "format"):
        assert 0.3 < np.abs(real.astype(float) - fake.astype(float)).mean() < 4.0


def _corpus_digests(path) -> list[tuple[str, str]]:
    corpus = Corpus.open(path)
    return sorted((row["id"], row["sha256"]) for row in corpus.rows())


def test_same_seeds_give_identical_bytes_across_two_runs(tmp_path):
    """One corpus written in this process, one by the CLI in a fresh interpreter."""
    generator = ParametricGenerator(resolution=128, artifacts="all")
    writer = CorpusWriter(tmp_path / "here", [generator.config()])
    writer.write(generator.generate(range(3)))
    writer.close()
    subprocess.run(
        [sys.executable, "-m", "facebench.harness.cli", "generate", "parametric", "--n", "3", "--artifacts", "all",
         "-p", "resolution=128", "--out", str(tmp_path / "there")],
        check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert _corpus_digests(tmp_path / "here") == _corpus_digests(tmp_path / "there")


def test_a_hundred_seeds_give_a_hundred_distinct_faces():
    images = render_faces([sample_face_params(seed) for seed in range(100)], 64).images.astype(np.float32)
    digests = {hashlib.sha256(image.tobytes()).hexdigest() for image in images.astype(np.uint8)}
    assert len(digests) == 100
    flat = images.reshape(100, -1)
    squared = (flat**2).sum(1)
    distance = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * flat @ flat.T, 0) / flat.shape[1])
    np.fill_diagonal(distance, np.inf)
    assert distance.min() > 8.0, "two seeds gave nearly the same face"
