"""crowdfab-fleet with binary G-code: analyse it locally, submit it locally and to a served fleet."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.test_cli import FLEET, run, served_fleet  # noqa: F401 (fixture)

TWIN = "mini_cube_prusaslicer26"


def test_analyze_reads_a_bgcode_like_its_text_twin(tmp_path, sample_gcode):
    binary = json.loads(
        run("analyze", str(sample_gcode / f"{TWIN}.bgcode"), data_dir=tmp_path, check=True).stdout
    )
    text = json.loads(
        run("analyze", str(sample_gcode / f"{TWIN}.gcode"), data_dir=tmp_path, check=True).stdout
    )
    assert binary == text
    assert binary["estimated_time_s"] == 1926 and binary["filament_length_mm"] == 986.61
    assert binary["filament_weight_g"] == 3.01 and binary["material"] == "PETG"
    damaged = tmp_path / "damaged.bgcode"
    damaged.write_bytes((sample_gcode / f"{TWIN}.bgcode").read_bytes()[:5000])
    refused = run("analyze", str(damaged), data_dir=tmp_path)
    assert refused.returncode != 0 and "truncated" in refused.stderr


def test_job_submit_queues_a_bgcode_locally(tmp_path, sample_gcode):
    run("member", "add", "ada", data_dir=tmp_path, check=True)
    submitted = run(
        "job",
        "submit",
        str(sample_gcode / f"{TWIN}.bgcode"),
        "--member",
        "ada",
        "--json",
        data_dir=tmp_path,
        check=True,
    )
    body = json.loads(submitted.stdout)
    assert body["analysis"]["estimated_time_s"] == 1926 and body["jobs"][0]["material"] == "PETG"


def test_job_submit_sends_a_bgcode_to_a_served_fleet(served_fleet, sample_gcode):  # noqa: F811
    url, data_dir = served_fleet
    token = json.loads(run("member", "add", "ada", "--json", data_dir=data_dir, check=True).stdout)["token"]
    result = subprocess.run(
        [FLEET, "job", "submit", str(sample_gcode / f"{TWIN}.bgcode"), "--fleet", url, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "CROWDFAB_TOKEN": token},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["analysis"]["filament_length_mm"] == pytest.approx(986.61)
    assert body["analysis"]["material"] == "PETG" and body["jobs"][0]["state"] == "queued"


def write_two_plates(folder, sample_gcode):
    """A sliced 3MF archive with plates 1 (the cube) and 4 (the vase)."""
    from tests.api.test_jobs_sliced_files import three_mf

    cube = (sample_gcode / f"{TWIN}.gcode").read_bytes()
    vase = (sample_gcode / "vase_prusaslicer.gcode").read_bytes()
    path = folder / "two.gcode.3mf"
    path.write_bytes(three_mf({1: cube, 4: vase}))
    return path


def test_analyze_and_submit_choose_a_plate_with_plate(tmp_path, sample_gcode):
    archive = write_two_plates(tmp_path, sample_gcode)
    refused = run("analyze", str(archive), data_dir=tmp_path)
    assert refused.returncode == 1
    assert "2 plates (1 and 4)" in refused.stderr and "--plate 1" in refused.stderr
    chosen = json.loads(run("analyze", str(archive), "--plate", "4", data_dir=tmp_path, check=True).stdout)
    vase = json.loads(
        run("analyze", str(sample_gcode / "vase_prusaslicer.gcode"), data_dir=tmp_path, check=True).stdout
    )
    assert chosen == vase
    missing = run("analyze", str(archive), "--plate", "3", data_dir=tmp_path)
    assert missing.returncode == 1 and "has no plate 3; it holds plates 1 and 4" in missing.stderr
    usage = run("analyze", str(archive), "--plate", "0", data_dir=tmp_path)
    assert usage.returncode == 2 and "--plate: must be 1 or more" in usage.stderr

    run("member", "add", "ada", data_dir=tmp_path, check=True)
    refused = run("job", "submit", str(archive), "--member", "ada", data_dir=tmp_path)
    assert refused.returncode == 1 and "--plate 1" in refused.stderr
    missing = run("job", "submit", str(archive), "--member", "ada", "--plate", "2", data_dir=tmp_path)
    assert missing.returncode == 1 and "has no plate 2" in missing.stderr
    listed = json.loads(run("job", "list", "--member", "ada", "--json", data_dir=tmp_path, check=True).stdout)
    assert listed == []  # the refusals queued nothing
    submitted = run(
        "job",
        "submit",
        str(archive),
        "--member",
        "ada",
        "--plate",
        "4",
        "--json",
        data_dir=tmp_path,
        check=True,
    )
    assert json.loads(submitted.stdout)["analysis"] == vase


def test_job_submit_sends_the_plate_to_a_served_fleet(served_fleet, sample_gcode, tmp_path):  # noqa: F811
    url, data_dir = served_fleet
    archive = write_two_plates(tmp_path, sample_gcode)
    token = json.loads(run("member", "add", "ada", "--json", data_dir=data_dir, check=True).stdout)["token"]

    def submit(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [FLEET, "job", "submit", str(archive), "--fleet", url, "--json", *extra],
            capture_output=True,
            text=True,
            env={**os.environ, "CROWDFAB_TOKEN": token},
            timeout=120,
        )

    refused = submit()
    assert refused.returncode == 1
    assert "2 plates (1 and 4)" in refused.stderr and "--plate 1" in refused.stderr
    assert "form field" not in refused.stderr  # said in this command's terms, not the API's
    missing = submit("--plate", "7")
    assert missing.returncode == 1 and "has no plate 7" in missing.stderr
    result = submit("--plate", "4")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["jobs"][0]["state"] == "queued" and len(body["jobs"]) == 1
    assert body["analysis"]["filament_length_mm"] != pytest.approx(986.61)  # the vase, not the cube
