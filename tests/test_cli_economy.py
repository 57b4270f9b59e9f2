"""``crowdfab-fleet prices``, ``group`` and ``ledger`` on a data dir, called in-process."""

from __future__ import annotations

import json

from fleet.cli import main


def fleet_cli(capsys, tmp_path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--data-dir", str(tmp_path)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_manager_sets_prices_groups_and_quotas_from_the_console(capsys, tmp_path):
    assert fleet_cli(capsys, tmp_path, "member", "add", "boss", "--role", "manager")[0] == 0
    assert fleet_cli(capsys, tmp_path, "member", "add", "ada")[0] == 0
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"per_gram": {"PETG": "0.04"}, "minimum": "1"}))
    code, _, err = fleet_cli(capsys, tmp_path, "prices", "set", str(prices), "--manager", "ada")
    assert code == 1 and "not a manager" in err
    assert fleet_cli(capsys, tmp_path, "prices", "set", str(prices), "--manager", "boss")[0] == 0
    code, out, _ = fleet_cli(capsys, tmp_path, "prices", "show", "--json")
    assert json.loads(out)["per_gram"] == {"PETG": "0.04"} and json.loads(out)["currency"] == "EUR"
    prices.write_text(json.dumps({"per_gram": {"PETG": "-0.04"}}))
    code, _, err = fleet_cli(capsys, tmp_path, "prices", "set", str(prices), "--manager", "boss")
    assert code == 1 and "must not be negative" in err

    assert (
        fleet_cli(capsys, tmp_path, "group", "add", "student", "--priority", "1", "--manager", "boss")[0] == 0
    )
    assert fleet_cli(capsys, tmp_path, "group", "assign", "ada", "student", "--manager", "boss")[0] == 0
    quota = ("group", "quota", "student", "--period", "month", "--hours", "10", "--manager", "boss")
    assert fleet_cli(capsys, tmp_path, *quota)[0] == 0
    negative = ("group", "quota", "student", "--period", "month", "--grams", "-3", "--manager", "boss")
    code, _, err = fleet_cli(capsys, tmp_path, *negative)
    assert code == 1 and "grams" in err
    code, out, _ = fleet_cli(capsys, tmp_path, "group", "list", "--json")
    assert json.loads(out) == [{"id": 1, "name": "student", "priority": 1, "members": ["ada"]}]

    code, out, _ = fleet_cli(capsys, tmp_path, "ledger", "export", "--month", "2026-11", "--manager", "boss")
    assert code == 0 and out.startswith("date,charge_id,job_id,member")
    code, _, err = fleet_cli(capsys, tmp_path, "ledger", "export", "--month", "11-2026", "--manager", "boss")
    assert code == 1 and "YYYY-MM" in err
