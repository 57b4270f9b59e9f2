"""The crowdfab-fleet command: help, exit codes, and the real server end to end."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.brokers import free_port, wait_until
from tests.lost_answer import AnswerDropper
from tests.processes import answers

BIN = Path(sys.executable).parent
FLEET = str(BIN / "crowdfab-fleet")
PART = "M82\nG28\nG92 E0\nG1 Z0.2 F600\nG1 X10 Y10 F3000\nG1 X50 Y10 E2 F1200\nG1 X50 Y50 E4\n"


def run(*args: str, data_dir: Path, check: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [FLEET, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["serve", "--help"],
        ["member", "add", "--help"],
        ["member", "list", "--help"],
        ["analyze", "--help"],
        ["job", "submit", "--help"],
        ["job", "list", "--help"],
        ["job", "cancel", "--help"],
        ["prices", "set", "--help"],
        ["group", "quota", "--help"],
        ["ledger", "export", "--help"],
        ["spool", "list", "--help"],
        ["spool", "add", "--help"],
        ["spool", "load", "--help"],
    ],
)
def test_every_command_has_help(args):
    result = subprocess.run([FLEET, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "usage:" in result.stdout
    if args != ["--help"]:
        assert "--data-dir" in result.stdout


def test_a_group_without_action_shows_its_help_and_exits_2():
    result = subprocess.run([FLEET, "member"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "add" in result.stderr


def test_member_add_prints_the_token_once_and_list_shows_no_token(tmp_path):
    added = run("member", "add", "ada", "--role", "manager", "--json", data_dir=tmp_path, check=True)
    token = json.loads(added.stdout)["token"]
    assert token.startswith("cfm_")
    listed = run("member", "list", "--json", data_dir=tmp_path, check=True)
    assert json.loads(listed.stdout) == [{"id": 1, "name": "ada", "role": "manager", "active": True}]
    assert token not in listed.stdout
    again = run("member", "add", "ada", data_dir=tmp_path)
    assert again.returncode == 1 and "ada" in again.stderr


def test_analyze_prints_json_and_exit_code_says_whether_the_lab_refuses(tmp_path, sample_gcode):
    result = run("analyze", str(sample_gcode / "puzzle_cura.gcode"), data_dir=tmp_path, check=True)
    assert json.loads(result.stdout)["estimated_time_s"] == 3485
    bad = tmp_path / "bad.gcode"
    bad.write_text("G28\nM502\nG1 X1 Y1 E1\n")
    refused = run("analyze", str(bad), data_dir=tmp_path)
    assert refused.returncode == 1
    assert any(f["command"] == "M502" and f["line"] == 2 for f in json.loads(refused.stdout)["findings"])
    missing = run("analyze", str(tmp_path / "nope.gcode"), data_dir=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_local_job_commands_work_on_the_data_dir(tmp_path):
    run("member", "add", "ada", data_dir=tmp_path, check=True)
    part = tmp_path / "part.gcode"
    part.write_text(PART)
    submitted = run(
        "job",
        "submit",
        str(part),
        "--member",
        "ada",
        "--copies",
        "2",
        "--json",
        data_dir=tmp_path,
        check=True,
    )
    ids = [j["id"] for j in json.loads(submitted.stdout)["jobs"]]
    assert len(ids) == 2
    listed = json.loads(run("job", "list", "--member", "ada", "--json", data_dir=tmp_path, check=True).stdout)
    assert [j["id"] for j in listed] == ids
    assert listed[0]["explanation"]["position"] == 1
    cancelled = run("job", "cancel", str(ids[0]), "--member", "ada", "--json", data_dir=tmp_path, check=True)
    assert json.loads(cancelled.stdout)["state"] == "cancelled"
    again = run("job", "cancel", str(ids[0]), "--member", "ada", data_dir=tmp_path)
    assert again.returncode == 1 and "already cancelled" in again.stderr
    nobody = run("job", "list", data_dir=tmp_path)
    assert nobody.returncode == 2 and "--member" in nobody.stderr


def test_local_spool_commands_add_list_change_and_refuse_clearly(tmp_path):
    run("member", "add", "ada", "--role", "manager", data_dir=tmp_path, check=True)
    run("member", "add", "bo", data_dir=tmp_path, check=True)
    spool = ["spool", "add", "--material", "petg", "--colour", "black", "--hex", "#111111"]
    money = ["--grams", "1000", "--price-per-kg", "2990", "--shelf", "B2"]
    added = json.loads(run(*spool, *money, "--member", "ada", "--json", data_dir=tmp_path, check=True).stdout)
    assert (added["material"], added["remaining_grams"], added["price_per_kg"]) == ("PETG", 1000, 2990)
    changed = run(
        "spool", "set", str(added["id"]), "--remaining", "420.5", "--member", "ada", data_dir=tmp_path
    )
    assert changed.returncode == 0 and "420.5 g" in changed.stdout
    listed = run("spool", "list", "--where", "shelf", "--member", "bo", data_dir=tmp_path, check=True)
    assert "black (#111111)" in listed.stdout and "shelf B2" in listed.stdout

    unknown = run(
        "spool", "add", "--material", "mud", *spool[4:], *money, "--member", "ada", data_dir=tmp_path
    )
    assert unknown.returncode == 1 and "unknown material 'mud'" in unknown.stderr
    member = run(*spool, *money, "--member", "bo", data_dir=tmp_path)
    assert member.returncode == 1 and "only a lab manager" in member.stderr
    nowhere = run("spool", "load", str(added["id"]), "nope", "--member", "ada", data_dir=tmp_path)
    assert nowhere.returncode == 1 and "no printer" in nowhere.stderr

    part = tmp_path / "part.gcode"
    part.write_text(PART)
    submitted = run(
        "job", "submit", str(part), "--member", "bo", "--colour", "black", "--json", data_dir=tmp_path
    )
    assert json.loads(submitted.stdout)["jobs"][0]["colour"] == "black"


@pytest.fixture
def served_fleet(tmp_path):
    """``crowdfab-fleet serve`` on an empty data dir, as a separate process."""
    port = free_port()
    data_dir = tmp_path / "fleet"
    proc = subprocess.Popen(
        # Its own broker port too: 18830, the default, may be taken by another fleet on this machine.
        [FLEET, "serve", "--data-dir", str(data_dir), "--port", str(port), "--mqtt-port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        return answers(f"{url}/api/v1/health", proc, "the fleet", proc.stdout.read)

    wait_until(up, 30, "the fleet to answer")
    yield url, data_dir
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_served_fleet_accepts_the_benchy_and_answers_like_the_document(served_fleet, sample_gcode):
    url, data_dir = served_fleet
    added = run("member", "add", "ada", "--json", data_dir=data_dir, check=True)
    token = json.loads(added.stdout)["token"]
    assert requests.get(f"{url}/api/v1/queue", timeout=10).status_code == 401
    with (sample_gcode / "benchy_prusaslicer.gcode").open("rb") as f:
        response = requests.post(
            f"{url}/api/v1/jobs",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("benchy.gcode", f)},
            timeout=60,
        )
    assert response.status_code == 201, response.text
    assert response.headers["Server"].startswith("crowdfab") or "waitress" in response.headers["Server"]
    analysis = response.json()["analysis"]
    assert analysis["estimated_time_s"] == 2323
    assert analysis["filament_length_mm"] == pytest.approx(4282.06)
    assert analysis["filament_weight_g"] == pytest.approx(12.77)
    assert analysis["material"] == "PLA" and analysis["nozzle_diameter"] == pytest.approx(0.4)
    assert analysis["thumbnails"] and analysis["bounds"]["min_y"] == pytest.approx(-2.0)
    assert analysis["model_bounds"]["min_y"] > analysis["bounds"]["min_y"]


def test_remote_job_submit_streams_with_a_progress_bar(served_fleet, tmp_path):
    url, data_dir = served_fleet
    token = json.loads(run("member", "add", "ada", "--json", data_dir=data_dir, check=True).stdout)["token"]
    part = tmp_path / "part.gcode"
    part.write_text(PART * 2000)
    env = {**os.environ, "CROWDFAB_TOKEN": token}
    result = subprocess.run(
        [FLEET, "job", "submit", str(part), "--fleet", url, "--progress", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "100%" in result.stderr
    assert json.loads(result.stdout)["jobs"][0]["state"] == "queued"
    unreachable = subprocess.run(
        [FLEET, "job", "list", "--fleet", f"http://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert unreachable.returncode == 3 and "could not reach the fleet" in unreachable.stderr


def test_remote_job_list_follows_every_page(served_fleet):
    from fleet.config import FleetConfig
    from fleet.server import Fleet
    from fleet.states import JobState

    url, data_dir = served_fleet
    token = json.loads(run("member", "add", "ada", "--json", data_dir=data_dir, check=True).stdout)["token"]
    fleet = Fleet.open(FleetConfig(data_dir=data_dir))  # beside the server: more jobs than one page holds
    try:
        member = fleet.store.get_member_by_name("ada")
        made = fleet.store.create_jobs(
            member.id,
            count=150,
            state=JobState.QUEUED,
            file_sha256="ab" * 32,
            filename="part.gcode",
            size_bytes=10,
            material="PLA",
            note="",
            analysis={},
            actor=f"member:{member.id}",
            reason="submitted",
            now=1_767_225_600.0,
        )
    finally:
        fleet.close()
    env = {**os.environ, "CROWDFAB_TOKEN": token}
    listed = subprocess.run(
        [FLEET, "job", "list", "--fleet", url, "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    assert [job["id"] for job in json.loads(listed.stdout)] == [job.id for job in made]


def test_remote_job_submit_resends_a_lost_answer_with_its_key_and_queues_once(served_fleet, tmp_path):
    url, data_dir = served_fleet
    token = json.loads(run("member", "add", "ada", "--json", data_dir=data_dir, check=True).stdout)["token"]
    part = tmp_path / "part.gcode"
    part.write_text(PART)
    env = {**os.environ, "CROWDFAB_TOKEN": token}
    relay = AnswerDropper(int(url.rsplit(":", 1)[1]))
    try:
        result = subprocess.run(
            [FLEET, "job", "submit", str(part), "--fleet", f"http://127.0.0.1:{relay.port}", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        relay.close()
    assert result.returncode == 0, result.stderr
    assert relay.connections == 2
    assert "sending it again with the same Idempotency-Key" in result.stderr
    answered = [job["id"] for job in json.loads(result.stdout)["jobs"]]
    jobs = requests.get(f"{url}/api/v1/jobs/mine", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert [job["id"] for job in jobs.json()["jobs"]] == answered, "queued once, and answered with it"

    # A new invocation is a new submission: a key of its own.
    again = subprocess.run(
        [FLEET, "job", "submit", str(part), "--fleet", url, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["jobs"][0]["id"] not in answered


def test_remote_list_and_cancel_go_through_the_client_and_exit_codes_say_who_failed(served_fleet, tmp_path):
    url, data_dir = served_fleet
    token = json.loads(run("member", "add", "ada", "--json", data_dir=data_dir, check=True).stdout)["token"]
    part = tmp_path / "part.gcode"
    part.write_text(PART)
    env = {**os.environ, "CROWDFAB_TOKEN": token, "CROWDFAB_FLEET_URL": url}

    def fleet(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([FLEET, *args], capture_output=True, text=True, env=env, timeout=120)

    job_id = json.loads(fleet("job", "submit", str(part), "--json").stdout)["jobs"][0]["id"]
    assert [j["id"] for j in json.loads(fleet("job", "list", "--json").stdout)] == [job_id]
    assert [j["id"] for j in json.loads(fleet("job", "list", "--queue", "--json").stdout)] == [job_id]
    cancelled = fleet("job", "cancel", str(job_id), "--reason", "wrong file", "--json")
    assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["state"] == "cancelled"
    missing = fleet("job", "cancel", "99999")
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr
    misspelt = fleet("job", "list", "--fleet", "fleet.lab:8080")
    assert misspelt.returncode == 2 and "http://" in misspelt.stderr


def test_every_path_of_the_http_contract_is_in_the_fleets_own_document(served_fleet):
    from fleet import http_protocol as h

    url, _ = served_fleet
    document = requests.get(f"{url}{h.OPENAPI}", timeout=30).json()
    prefix = document["servers"][0]["url"]
    documented = {prefix + path for path in document["paths"]}
    used = [
        h.HEALTH,
        h.ENROLL,
        h.JOBS,
        h.MY_JOBS,
        h.QUEUE,
        h.SPOOLS,
        h.job_cancel_path(7),
        h.job_file_path("p-1", 7),
        h.spool_path(7),
        h.printer_spool_path("p-1"),
    ]
    templates = {
        h.spool_path(7): f"{h.SPOOLS}/{{spool_id}}",
        h.printer_spool_path("p-1"): f"{h.API_PREFIX}/printers/{{printer_id}}/spool",
        h.job_cancel_path(7): f"{h.JOBS}/{{job_id}}/cancel",
        h.job_file_path("p-1", 7): f"{h.API_PREFIX}/printers/{{printer_id}}/jobs/{{job_id}}/file",
    }
    assert [templates.get(path, path) for path in used if templates.get(path, path) not in documented] == []


def test_serve_takes_the_number_of_trusted_proxies_and_refuses_nonsense(capsys):
    from fleet.cli import build_parser, config_of

    args = build_parser().parse_args(["serve", "--trusted-proxies", "1"])
    assert config_of(args).trusted_proxies == 1
    assert config_of(build_parser().parse_args(["serve"])).trusted_proxies == 0
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["serve", "--trusted-proxies", "-1"])
    assert refused.value.code == 2
    assert "must be from 0 to 10" in capsys.readouterr().err


def test_serve_takes_who_may_scrape_from_its_flags_or_the_environment(tmp_path, monkeypatch):
    from fleet.cli import build_parser, config_of

    monkeypatch.delenv("CROWDFAB_METRICS_TOKEN", raising=False)
    monkeypatch.delenv("CROWDFAB_METRICS_ALLOW", raising=False)
    assert not config_of(build_parser().parse_args(["serve"])).metrics.enabled
    token_file = tmp_path / "scrape-token"
    token_file.write_text("from-the-file-" + "f" * 20 + "\n")
    args = build_parser().parse_args(
        ["serve", "--metrics-token-file", str(token_file), "--metrics-allow", "::1"]
    )
    access = config_of(args).metrics
    assert access.token == "from-the-file-" + "f" * 20 and access.allows_address("::1")
    assert not access.allows_address("127.0.0.1")
    monkeypatch.setenv("CROWDFAB_METRICS_TOKEN", "from-the-environment-" + "e" * 20)
    monkeypatch.setenv("CROWDFAB_METRICS_ALLOW", "10.0.0.0/8")
    access = config_of(build_parser().parse_args(["serve"])).metrics
    assert access.token == "from-the-environment-" + "e" * 20 and access.allows_address("10.2.3.4")
    assert config_of(
        build_parser().parse_args(["serve", "--metrics-token-file", str(token_file)])
    ).metrics.token == ("from-the-file-" + "f" * 20)  # the file wins over the variable
    # Commands that serve nothing do not read them.
    assert not config_of(build_parser().parse_args(["enroll-code"])).metrics.enabled


@pytest.mark.parametrize(
    ("args", "env", "problem"),
    [
        (["--metrics-allow", "10.0.0.0/8,lab"], {}, "'lab' in the metrics allow-list"),
        (["--metrics-token-file", "/nonexistent/scrape-token"], {}, "cannot read the metrics token file"),
        ([], {"CROWDFAB_METRICS_TOKEN": "short"}, "at least 16 characters"),
    ],
)
def test_serve_refuses_a_bad_scrape_setting_before_starting(
    tmp_path, monkeypatch, capsys, args, env, problem
):
    from fleet.cli import main

    monkeypatch.delenv("CROWDFAB_METRICS_TOKEN", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--data-dir", str(tmp_path / "data"), "--port", "0", *args]) == 2
    assert problem in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # refused before anything was opened or started


def test_the_readmes_spool_recipe_runs_against_a_served_fleet(served_fleet, tmp_path):
    """The README's spool commands as written, with this fleet's address, a manager's token, a printer
    named as there, and a file: the job asks for black PETG and goes to the printer it was loaded on."""
    url, data_dir = served_fleet
    token = json.loads(run("member", "add", "ada", "--role", "manager", "--json", data_dir=data_dir).stdout)[
        "token"
    ]
    volume = {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 200, "max_y": 200, "max_z": 200}
    registered = requests.post(
        f"{url}/api/v1/printers",
        json={"id": "prusa-mk4", "volume": volume},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert registered.status_code == 201, registered.text
    (tmp_path / "part.gcode").write_text(PART)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("### Spools: what is loaded where", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = block.replace("\\\n", " ").replace("http://fleet:8080", url).replace("$TOKEN", token)
    for line in commands.splitlines():
        command = line.split("   #", 1)[0].strip()
        words = shlex.split(command)
        assert words[0] == "crowdfab-fleet", command
        done = subprocess.run([FLEET, *words[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (command, done.stderr)
        if " spool list" in command:
            assert "black (#1a1a1a)" in done.stdout and "on prusa-mk4" in done.stdout
    job = requests.get(
        f"{url}/api/v1/jobs/1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()
    assert (job["material"], job["colour"]) == ("PETG", "black")
