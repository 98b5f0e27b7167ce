"""The shortcut guard's comparison of a corpus's real and fake files (harness/data/shortcuts.py)."""

from __future__ import annotations

import json

from facebench.harness.data.shortcuts import (FileFacts, compare_classes, describe_format, facts_from_meta,
                                              rows_shortcuts, run_shortcuts, shortcut_lines)


def jpeg(quality=92, size=(64, 64), subsampling="4:2:0", exif=False, harmonised=None):
    return FileFacts("jpeg", size[0], size[1], exif, quality, subsampling, harmonised)


def png(size=(64, 64), exif=False, harmonised=None):
    return FileFacts("png", size[0], size[1], exif, None, None, harmonised)


def test_matching_classes_say_nothing():
    assert compare_classes([jpeg(), png()] * 5, [png(), jpeg(90)] * 5) == []
    assert compare_classes([jpeg()], []) == [] and compare_classes([], [png()]) == []


def test_each_difference_is_named():
    assert compare_classes([jpeg()] * 4, [png()] * 4) == [
        "reals are JPEG q~92, fakes are PNG: a detector can score on format alone"]
    assert compare_classes([jpeg(92)] * 4, [jpeg(75)] * 4) == [
        "reals are JPEG q~92, fakes are JPEG q~75: a detector can score on compression alone"]
    assert compare_classes([jpeg(subsampling="4:4:4")] * 4, [jpeg()] * 4) == [
        "real JPEGs use chroma subsampling 4:4:4, fake JPEGs 4:2:0: a detector can score on colour sampling alone"]
    assert compare_classes([png((512, 512))] * 4, [png((1024, 1024))] * 4) == [
        "reals are 512x512 pixels, fakes 1024x1024 (medians): a detector can score on size, or on how much each "
        "was resized, alone"]
    assert compare_classes([png(exif=True)] * 4, [png()] * 4) == [
        "100% of reals carry EXIF, 0% of fakes: a tool reading the files can score on metadata alone"]


def test_small_differences_are_tolerated_and_mixtures_described():
    assert compare_classes([jpeg(92)] * 4, [jpeg(90)] * 4) == []  # within QUALITY_TOLERANCE
    assert compare_classes([png((512, 512))] * 4, [png((540, 540))] * 4) == []  # within SIZE_TOLERANCE
    assert describe_format([jpeg(90)] * 3 + [png()] * 2) == "JPEG q~90 (60%) and PNG (40%)"


def test_harmonising_well_below_the_originals_quality_silences_the_format_but_not_the_size():
    reals, fakes = [jpeg(92, harmonised=75)] * 4, [png(harmonised=75)] * 4
    assert compare_classes(reals, fakes) == []
    too_fine = compare_classes([jpeg(92, harmonised=95)] * 4, [png(harmonised=95)] * 4)
    assert too_fine == ["reals are JPEG q~92, fakes are PNG, and harmonise jpeg:95 keeps the traces of the JPEG "
                        "q~92 compression: harmonise at jpeg:75 or lower"]
    sized = compare_classes([jpeg(92, (512, 512), harmonised=50)] * 4, [png((1024, 1024), harmonised=50)] * 4)
    assert len(sized) == 1 and sized[0].startswith("reals are 512x512 pixels, fakes 1024x1024")
    # lossless originals leave nothing for the re-encoding to keep
    assert compare_classes([png(exif=True, harmonised=95)] * 4, [png(harmonised=95)] * 4) == []


def test_facts_come_from_record_meta_and_manifest_rows():
    meta = {"file": {"format": "jpeg", "width": 40, "height": 30, "exif": True, "quality": 80, "subsampling": "4:2:0"},
            "harmonised": "jpeg:60"}
    assert facts_from_meta(meta) == FileFacts("jpeg", 40, 30, True, 80, "4:2:0", 60)
    assert facts_from_meta({}) is None and facts_from_meta({"file": "png"}) is None
    rows = [{"label": 0, "meta": json.dumps({"file": {"format": "jpeg", "width": 9, "height": 9, "quality": 92}})},
            {"label": 1, "meta": json.dumps({"file": {"format": "png", "width": 9, "height": 9}})},
            {"label": 1, "meta": "{}"}, {"label": 0, "meta": None}]
    assert rows_shortcuts(rows) == ["reals are JPEG q~92, fakes are PNG: a detector can score on format alone"]
    assert rows_shortcuts(rows[2:]) == []  # generated corpora record no file facts


def test_a_run_record_holds_the_findings_as_dict_or_store_text():
    info = {"shortcuts": {"dalle3": ["reals are JPEG q~92, fakes are PNG: a detector can score on format alone"]}}
    for run in ({"info": info}, {"info": json.dumps(info)}):
        assert run_shortcuts(run) == info["shortcuts"]
        assert shortcut_lines(run) == ["corpus dalle3: reals are JPEG q~92, fakes are PNG: a detector can score on "
                                       "format alone"]
    assert run_shortcuts({}) == {} and run_shortcuts({"info": "not json"}) == {}
