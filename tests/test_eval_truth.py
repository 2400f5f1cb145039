"""Ground-truth files, suites and thresholds: what they accept and how they say what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vision.config import ConfigError, EventsConfig
from vision.evaluate.overrides import parse_overrides
from vision.evaluate.suite import SuiteResult, ThresholdsFile, check_thresholds, load_suite, load_thresholds
from vision.evaluate.truth import Incident, load_truth

from .conftest import ROOT, SAMPLE

TRUTH = {
    "video": "clip.mp4",
    "camera": {
        "detect_fps": 5,
        "zones": {
            "way": {
                "polygon": [[0, 0.3], [1, 0.3], [1, 1], [0, 1]],
                "rules": {"litter": {"min_duration": 10}},
            }
        },
    },
    "events": {"close_after": 4},
    "incidents": [{"type": "litter", "zone": "way", "start": 5, "end": 30, "box": [10, 20, 40, 50]}],
}


def folder(tmp_path: Path, files: dict[str, object]) -> Path:
    for name, content in files.items():
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        (tmp_path / name).write_text(text)
    return tmp_path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bad.truth.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_truth(path)
    return err.value.problems


def test_truth_file_in_yaml_and_json(tmp_path: Path) -> None:
    folder(tmp_path, {"a.truth.yaml": TRUTH, "b.truth.json": json.dumps(TRUTH)})
    a, b = load_truth(tmp_path / "a.truth.yaml"), load_truth(tmp_path / "b.truth.json")
    assert a.video == tmp_path / "clip.mp4" and a == b  # paths relative to the file
    assert a.incidents[0].end == 30 and a.incidents[0].box == (10, 20, 40, 50)
    config = a.to_config("cam", tmp_path / "data")
    assert config.cameras["cam"].url.get_secret_value() == str(tmp_path / "clip.mp4")
    assert (
        config.events.close_after == 4 and config.cameras["cam"].zones["way"].rules.litter.min_duration == 10
    )
    assert a.watched() == [("litter", "way")]


def test_errors_name_the_file_the_key_and_the_line(tmp_path: Path) -> None:
    text = yaml.safe_dump({**TRUTH, "camera": {**TRUTH["camera"], "url": "rtsp://cam/x"}}, sort_keys=False)
    (line,) = problems(tmp_path, text)
    assert "bad.truth.yaml: camera: url: not used here" in line and "(line 2)" in line
    text = yaml.safe_dump({**TRUTH, "incidents": [{**TRUTH["incidents"][0], "strat": 3}]}, sort_keys=False)
    (line,) = problems(tmp_path, text)
    assert "incidents[0].strat: unknown key" in line and "did you mean 'start'?" in line
    bad = [
        {"type": "crowd", "zone": "way", "start": 1},
        {"type": "litter", "zone": "road", "start": 1},
        {"type": "litter", "zone": "way", "start": 9, "end": 3},
        {"type": "parking", "zone": "way", "start": 1},
    ]
    found = problems(tmp_path, yaml.safe_dump({**TRUTH, "incidents": bad}, sort_keys=False))
    assert any("incidents[2]: end (3.0) must be after start (9.0)" in p for p in found), found
    assert any("incidents[3].type: unknown event type 'parking'" in p for p in found), found
    found = problems(tmp_path, yaml.safe_dump({**TRUTH, "incidents": bad[:2]}, sort_keys=False))
    assert len(found) == 1 and "incidents:" in found[0]
    assert "[0].type: zone 'way' has no crowd rule" in found[0]
    assert "[1].zone: the camera has no zone 'road' (its zones: way)" in found[0]
    assert problems(tmp_path, "") == [
        f"{tmp_path / 'bad.truth.yaml'}: the file is empty: it needs at least a 'camera' and 'video' section"
    ]


def test_suite_from_a_folder_or_a_file(tmp_path: Path) -> None:
    truth = {**TRUTH, "video": str(SAMPLE)}
    folder(
        tmp_path,
        {
            "b.truth.yaml": truth,
            "a.truth.json": json.dumps(truth),
            "notes.yaml": {"not": "a truth file"},
            "limits.yaml": {"events": {"litter": {"min_recall": 1}}, "detection": {"min_map50": 0.5}},
            "suite.yaml": {"videos": ["b.truth.yaml"], "thresholds": "limits.yaml"},
        },
    )
    suite = load_suite(tmp_path)
    assert [v.name for v in suite.videos] == ["a", "b"] and suite.thresholds is None
    suite = load_suite(tmp_path / "suite.yaml")
    assert [v.path.name for v in suite.videos] == ["b.truth.yaml"]
    assert suite.thresholds.events == {"litter": {"min_recall": 1.0}}


def test_suite_problems_are_all_listed_before_any_replay(tmp_path: Path) -> None:
    folder(
        tmp_path,
        {
            "a.truth.yaml": TRUTH,  # its video is missing
            "b.truth.yaml": {**TRUTH, "video": str(SAMPLE), "boxes": {"file": "boxes.json"}},
            "limits.yaml": {"events": {"litter": {"min_recal": 1, "recall": 1}}},
        },
    )
    with pytest.raises(ConfigError) as err:
        load_suite(tmp_path, tmp_path / "limits.yaml")
    found = err.value.problems
    assert f"{tmp_path / 'a.truth.yaml'}: video: no such file: {tmp_path / 'clip.mp4'}" in found
    assert f"{tmp_path / 'b.truth.yaml'}: boxes.file: no such file: {tmp_path / 'boxes.json'}" in found
    assert sum("not a threshold: use min_ or max_" in p for p in found) == 2, found
    with pytest.raises(ConfigError, match=r"limits\.yaml: videos: required, but missing \(line 1\)"):
        load_suite(tmp_path / "limits.yaml")  # a threshold file is no suite file
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"empty: no ground-truth files \(\*\.truth\.yaml\)"):
        load_suite(empty)


def test_thresholds(tmp_path: Path) -> None:
    path = (
        folder(tmp_path, {"t.yaml": {"events": {"crowd": {"min_recall": 1, "max_false_closes": 0}}}})
        / "t.yaml"
    )
    limits = load_thresholds(path)
    result = SuiteResult(
        [], [], {"crowd": {"recall": 0.5, "false_closes": 0}}, {"map50": 0.95, "ap50": {}}, []
    )
    assert check_thresholds(result, limits) == ["events.crowd.recall: 0.500, needs >= 1.0"]
    limits = ThresholdsFile(events={"litter": {"min_recall": 1}}, detection={"min_map50": 0.96})
    assert check_thresholds(result, limits) == [
        "events.litter.recall: no value (no video watches this event type), needs >= 1.0",
        "detection.map50: 0.950, needs >= 0.96",
    ]


def test_each_rule_says_how_long_it_needs_to_close_a_ticket() -> None:
    """The close time of an incident: the next analysed frame (0.2 s at 5 frames/s), the rule's lag in
    seeing its subject gone, and close_after (the events' when the rule has none)."""
    truth = load_truth(SAMPLE.parent / "plaza.truth.yaml")  # crowd, fishing, litter, bike_parking
    by_rule = {
        rule: truth.close_time(Incident(type=rule, zone=zone, start=0, end=1))
        for rule, zone in truth.watched()
    }
    assert by_rule == pytest.approx(
        {
            "crowd": 0.2 + 1.0 + 1.0 + 3,  # half its 2 s window; a person out of sight counts 1 s (coast)
            "fishing": 0.2 + 3.0 + 3,  # a lost track is unknown until the tracker drops it (max_lost)
            "bike_parking": 0.2 + 3.0 + 5,
            "litter": 0.2 + 1.0 + 5,  # the static-object model looks once a second
        }
    )
    crowd = truth.camera.zones["crossing"].rules.crowd
    assert crowd is not None
    boxes = crowd.model_copy(update={"coast": 0.0, "close_after": None})  # the frame's boxes: no coasting
    assert boxes.close_time(truth.camera, EventsConfig(close_after=7)) == pytest.approx(0.2 + 1.0 + 7)


def test_a_threshold_on_a_score_without_a_value_fails() -> None:
    """The ticket never closed: no time to close, one unclosed incident; both gates fail."""
    crowd = {"recall": 1.0, "time_to_close_max": None, "unclosed": 1, "precision": None}
    result = SuiteResult([], [], {"crowd": crowd}, None, [])
    limits = ThresholdsFile(
        events={"crowd": {"max_time_to_close_max": 7, "max_unclosed": 0, "min_precision": 1}},
        detection={"min_map50": 0.5, "min_ap50": {"person": 0.4}},
    )
    assert check_thresholds(result, limits) == [
        "events.crowd.time_to_close_max: no value (no incident that ended in the video had all its "
        "tickets closed), needs <= 7.0",
        "events.crowd.unclosed: 1.000, needs <= 0.0",
        "events.crowd.precision: no value (no ticket), needs >= 1.0",
        "detection.map50: no value (no annotated box on the processed frames), needs >= 0.5",
        "detection.ap50.person: no value (no annotated person box), needs >= 0.4",
    ]


def test_detection_is_gated_per_class(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("detection: {min_map50: 0.6, min_ap50: {person: 0.45, bicycle: 0.9}}\n")
    limits = load_thresholds(path)
    result = SuiteResult([], [], {}, {"map50": 0.71, "ap50": {"person": 0.44, "bicycle": 0.98}}, [])
    assert check_thresholds(result, limits) == ["detection.ap50.person: 0.440, needs >= 0.45"]
    path.write_text("detection: {min_map50: 0.6, min_ap50: {person: [0.4]}, max_map50: 1}\n")
    with pytest.raises(ConfigError) as err:
        load_thresholds(path)
    assert any("detection.max_map50" in p for p in err.value.problems), err.value.problems
    assert any("detection.min_ap50.person" in p for p in err.value.problems), err.value.problems


def test_set_overrides_every_truth_file_and_names_a_bad_key(tmp_path: Path) -> None:
    two_zones = {
        **TRUTH,
        "video": str(SAMPLE),
        "camera": {
            "detect_fps": 5,
            "zones": {
                **TRUTH["camera"]["zones"],
                "plaza": {"polygon": [[0, 0], [1, 0], [1, 1]], "rules": {"crowd": {"enter_count": 9}}},
            },
        },
    }
    folder(tmp_path, {"a.truth.yaml": two_zones, "b.truth.yaml": {**TRUTH, "video": str(SAMPLE)}})
    card = ROOT / "models" / "ssd_mobilenet_v2_coco.yaml"
    sets = parse_overrides(
        ["events.close_after=7", "camera.detect_fps=2", "camera.zones.*.rules.litter.min_duration=3"], card
    )
    suite = load_suite(tmp_path, overrides=sets)
    a, b = (v.truth for v in suite.videos)
    assert (
        a.events.close_after == b.events.close_after == 7 and a.camera.detect_fps == b.camera.detect_fps == 2
    )
    assert a.camera.zones["way"].rules.litter.min_duration == 3  # the zone with a litter rule
    assert (
        a.camera.zones["plaza"].rules.litter is None and a.camera.zones["plaza"].rules.crowd.enter_count == 9
    )
    assert a.detector.model == b.detector.model == str(card)
    assert a.incidents == load_truth(tmp_path / "a.truth.yaml").incidents  # the truth itself is untouched

    def refused(*items: str) -> list[str]:
        with pytest.raises(ConfigError) as err:
            load_suite(tmp_path, overrides=parse_overrides(list(items)))
        return err.value.problems

    assert refused("events.close_aftr=5") == [
        "--set events.close_aftr=5: events has no key 'close_aftr' (its keys: "
        + ", ".join(EventsConfig.model_fields)
        + ")"
    ]
    assert refused("camera.zones.*.rules.fishing.min_duration=3") == [
        "--set camera.zones.*.rules.fishing.min_duration=3: sets nothing in any file of the suite: "
        f"{tmp_path / 'a.truth.yaml'}, {tmp_path / 'b.truth.yaml'}: nothing under camera.zones has "
        "rules.fishing.min_duration"
    ]
    bad = refused("events.close_after=soon")
    assert len(bad) == 2 and all("with --set events.close_after=soon: events.close_after:" in p for p in bad)
    for text, message in [
        (
            "close_after=5",
            "'close_after' is not a setting here: use one of camera, detector, events, tolerance",
        ),
        ("events.close_after", "use KEY=VALUE with a dotted key"),
        ("events.close_after=[1", "the value is not valid YAML"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_overrides([text])


def test_set_reaches_a_key_left_at_its_default_wherever_a_wildcard_finds_it(tmp_path: Path) -> None:
    """``camera.zones.*.rules.crowd.coast`` is no file's key here (coast is left at its default): it
    is set on every crowd rule of the suite, a zone or a file without one stays without one, and a
    key no rule knows is refused by the schema, even where no file has the rule."""
    crowd = {"polygon": [[0, 0], [1, 0], [1, 1]], "rules": {"crowd": {"enter_count": 9}}}
    zones = {**TRUTH["camera"]["zones"], "plaza": crowd}
    with_crowd = {**TRUTH, "video": str(SAMPLE), "camera": {**TRUTH["camera"], "zones": zones}}
    folder(tmp_path, {"a.truth.yaml": with_crowd, "b.truth.yaml": {**TRUTH, "video": str(SAMPLE)}})
    assert "coast" not in yaml.safe_load((tmp_path / "a.truth.yaml").read_text())["camera"]["zones"]["plaza"]
    sets = ["camera.zones.*.rules.crowd.coast=0.5", "camera.zones.*.rules.*.min_duration=4"]
    a, b = (v.truth for v in load_suite(tmp_path, overrides=parse_overrides(sets)).videos)
    crowd_rule = a.camera.zones["plaza"].rules.crowd
    assert (crowd_rule.coast, crowd_rule.min_duration, crowd_rule.enter_count) == (0.5, 4, 9)
    for way in a.camera.zones["way"], b.camera.zones["way"]:  # a zone without a crowd rule gets none
        assert way.rules.crowd is None and way.rules.litter.min_duration == 4
    assert load_truth(tmp_path / "a.truth.yaml").camera.zones["plaza"].rules.crowd.coast != 0.5

    def refused(*items: str, where: Path = tmp_path) -> list[str]:
        with pytest.raises(ConfigError) as err:
            load_suite(where, overrides=parse_overrides(list(items)))
        return err.value.problems

    crowd_keys = ", ".join(type(crowd_rule).model_fields)
    assert refused("camera.zones.*.rules.crowd.coats=0.5") == [
        "--set camera.zones.*.rules.crowd.coats=0.5: camera.zones.*.rules.crowd has no key 'coats' "
        f"(its keys: {crowd_keys})"
    ]
    assert refused("camera.zones.*.rules.*.min_duraton=4") == [
        "--set camera.zones.*.rules.*.min_duraton=4: nothing under camera.zones.*.rules has min_duraton"
    ]
    assert refused("camera.zones.*.polygon.x=1") == [
        "--set camera.zones.*.polygon.x=1: camera.zones.*.polygon is a value, it has no key 'x'"
    ]
    (tmp_path / "a.truth.yaml").unlink()  # no file has a crowd rule: the wildcard finds nothing to set
    assert refused("camera.zones.*.rules.crowd.coast=0.5") == [
        "--set camera.zones.*.rules.crowd.coast=0.5: sets nothing in any file of the suite: "
        f"{tmp_path / 'b.truth.yaml'}: nothing under camera.zones has rules.crowd.coast"
    ]
    assert refused("camera.zones.*.rules.crowd.coats=0.5") == [  # the schema knows, with no file's help
        "--set camera.zones.*.rules.crowd.coats=0.5: camera.zones.*.rules.crowd has no key 'coats' "
        f"(its keys: {crowd_keys})"
    ]
    assert refused("camera.zones.plaza.rules.crowd.coast=0.5") == [
        "--set camera.zones.plaza.rules.crowd.coast=0.5: sets nothing in any file of the suite: "
        f"{tmp_path / 'b.truth.yaml'}: camera.zones has no key 'plaza' (its keys: way)"
    ]
