"""Face analysis (``facebench.generators.faces``) against the parametric renderer's ground truth.

For the clean renders of ``--n`` parametric seeds at each resolution: the detection rate,
the eye-centre and mouth-corner errors in pixels (the parametric eyes are iris centres; ours
are eye-contour means, as FFHQ defines them) and the IoU of the face, hair and background
masks, over the faces found; and the irises (``facebench.generators.irises``): how many of the
eyes of the faces found get one, its centre's and radius' errors against the rendered iris, and
the pupil radius' error. The parametric faces are cartoons, so these figures say how the
analysis copes with an unfamiliar domain as much as how good it is. Needs the extra:
``pip install 'facebench[faces]'``.

    python benchmarks/face_analysis_accuracy.py [--n 100] [--resolutions 256 512]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def measure(resolution: int, n: int) -> dict:
    from facebench.generators import faces, irises
    from facebench.generators.parametric.generator import ParametricGenerator

    batch = ParametricGenerator(resolution=resolution, artifacts="none", camera=False).render(range(n))
    eye_errors, mouth_errors, ious = [], [], {name: [] for name in ("face", "hair", "background")}
    iris_errors, radius_errors, pupil_errors, irises_found = [], [], [], 0
    found, seconds = 0, 0.0
    for seed, image, record in zip(range(n), batch.images, batch.records):
        start = time.perf_counter()
        analysis = faces.analyse_face(image)
        seconds += time.perf_counter() - start
        if analysis is None:
            continue
        found += 1
        for name in ("eye_left", "eye_right"):
            eye_errors.append(float(np.hypot(*np.subtract(analysis.landmarks[name], record.landmarks[name]))))
        for name in ("mouth_left", "mouth_right"):
            mouth_errors.append(float(np.hypot(*np.subtract(analysis.landmarks[name], record.landmarks[name]))))
        for name in ious:
            ious[name].append(iou(analysis.masks[name], record.masks[name]))
        located = irises.irises_of(analysis.landmarks)
        truth = rendered_irises(seed, resolution)
        for side, iris in located.items():
            irises_found += 1
            iris_errors.append(float(np.hypot(*np.subtract(iris.centre, record.landmarks[f"eye_{side}"]))))
            radius_errors.append(abs(iris.radius - truth[side][0]))
            pupil_errors.append(abs(iris.pupil_radius - truth[side][1]))
    return {"resolution": resolution, "n": n, "found": found, "eye": eye_errors, "mouth": mouth_errors,
            "iou": ious, "ms": 1e3 * seconds / max(n, 1), "irises_found": irises_found, "iris": iris_errors,
            "iris_radius": radius_errors, "pupil_radius": pupil_errors}


def rendered_irises(seed: int, resolution: int) -> dict[str, tuple[float, float]]:
    """The parametric face's iris and pupil radii in pixels, by side (its iris centres are its eye landmarks)."""
    from facebench.generators.parametric.face import sample_face_params
    from facebench.generators.parametric.layout import face_layout

    params = sample_face_params(seed)
    radius = face_layout(params).ri * params.scale * resolution
    return {"left": (radius, params.pupil_left * radius), "right": (radius, params.pupil_right * radius)}


def describe(errors: list[float]) -> str:
    if not errors:
        return "-"
    return f"mean {np.mean(errors):.2f}, median {np.median(errors):.2f}, p90 {np.percentile(errors, 90):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="parametric seeds per resolution")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    args = parser.parse_args()
    from facebench.generators import faces

    faces.require()
    for resolution in args.resolutions:
        r = measure(resolution, args.n)
        print(f"{resolution} px: faces found {r['found']}/{r['n']} ({100 * r['found'] / r['n']:.0f}%), "
              f"{r['ms']:.0f} ms an image")
        print(f"  eye centre error px: {describe(r['eye'])}")
        print(f"  mouth corner error px: {describe(r['mouth'])}")
        for name, values in r["iou"].items():
            print(f"  {name} IoU: {describe(values)}")
        eyes = 2 * r["found"]
        print(f"  irises located: {r['irises_found']}/{eyes} eyes of the faces found "
              f"({100 * r['irises_found'] / max(eyes, 1):.0f}%)")
        print(f"  iris centre error px: {describe(r['iris'])}")
        print(f"  iris radius error px (absolute): {describe(r['iris_radius'])}")
        print(f"  pupil radius error px (absolute): {describe(r['pupil_radius'])}")


if __name__ == "__main__":
    main()
