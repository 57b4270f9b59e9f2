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
