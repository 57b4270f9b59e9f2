"""The safety scan: refused commands, warnings, temperatures by material, and the lab's own rules."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from fleet.errors import Invalid
from fleet.gcode import DEFAULT_RULES, Analysis, SafetyRules, Severity, refusal_message
from fleet.gcode.generate import generate_box

Analyze = Callable[..., Analysis]


def found(a: Analysis) -> list[tuple[int, str, Severity, str]]:
    return [(f.line, f.command, f.severity, f.rule) for f in a.findings]


def test_m502_on_line_7_is_refused(analyze_text: Analyze) -> None:
    text = generate_box(extra_lines={7: "M502"})
    assert text.splitlines()[6] == "M502"
    a = analyze_text(text)
    assert a.refused
    assert found(a) == [(7, "M502", Severity.REFUSE, "refused-command")]
    message = refusal_message(a)
    assert message == (
        "line 7: M502 (factory reset of the firmware settings) is not allowed on a community printer"
    )


def test_refusal_message_lists_every_refused_line(analyze_text: Analyze) -> None:
    a = analyze_text(generate_box(extra_lines={12: "M500", 30: "M997", 40: "M600"}))
    message = refusal_message(a)
    assert "line 12: M500" in message and "line 30: M997" in message
    assert "M600" not in message  # a warning, not a refusal
    assert refusal_message(analyze_text(generate_box())) == ""


@pytest.mark.parametrize(
    "command",
    ["M500", "M502", "M997", "M92 E93", "M301 P1 I2 D3", "M303 E0 S210 C8", "M304 P1", "M112", "M550 Plab",
     "M552 S1", "M587 S\"lab\" P\"secret\"", "M30 other.gcode", "M851 Z-9", "M211 S0", "SAVE_CONFIG", "m500",
     "M502 ; reset", "N5 M502*12"],
)  # fmt: skip
def test_refused_commands(analyze_text: Analyze, command: str) -> None:
    a = analyze_text(f"G28\n{command}\nG1 X1 E1\n")
    assert [(f.line, f.severity) for f in a.findings] == [(2, Severity.REFUSE)]


@pytest.mark.parametrize("command", ["M600", "M0", "M1 press the button", "M601", "M25"])
def test_commands_that_need_a_person_are_warnings(analyze_text: Analyze, command: str) -> None:
    a = analyze_text(f"G28\n{command}\n")
    assert found(a) == [(2, command.split()[0], Severity.WARNING, "needs-person")]
    assert not a.refused


@pytest.mark.parametrize(
    "text",
    [
        "; M502\nG28\n",
        "G28 ; then M502 and M500\n",
        ";M500\n;   M997 firmware\nG28\n",
        "; start_gcode = G28\\nM502\\nM500\nG28\n",  # PrusaSlicer's config block quotes the start G-code
        "G28\nM117 do not send M502\n",  # a message is text, not a command
    ],
)
def test_commands_in_comments_are_not_flagged(analyze_text: Analyze, text: str) -> None:
    assert analyze_text(text).findings == ()


@pytest.mark.parametrize(
    ("header_material", "argument", "command", "expected"),
    [
        ("PLA", None, "M104 S215", []),
        ("PLA", None, "M104 S250", [("M104", Severity.WARNING, "hotend-temperature-material")]),
        ("PLA", None, "M109 R250", [("M109", Severity.WARNING, "hotend-temperature-material")]),
        ("PLA", "PETG", "M104 S250", []),  # the argument overrides the file
        ("PETG", "PLA", "M104 S250", [("M104", Severity.WARNING, "hotend-temperature-material")]),
        ("PLA", None, "M140 S80", [("M140", Severity.WARNING, "bed-temperature-material")]),
        ("ABS", None, "M190 S100", []),
        ("PLA+", None, "M104 S250", [("M104", Severity.WARNING, "hotend-temperature-material")]),
        (None, None, "M104 S280", []),  # unknown material: only the absolute limits apply
        (None, None, "M104 S320", [("M104", Severity.REFUSE, "hotend-temperature-absolute")]),
        ("PC", None, "M104 S305", [("M104", Severity.REFUSE, "hotend-temperature-absolute")]),
        (None, None, "M190 S130", [("M190", Severity.REFUSE, "bed-temperature-absolute")]),
        ("PLA", None, "M104 S0", []),
    ],
)
def test_temperatures_use_the_material(
    analyze_text: Analyze, header_material: Any, argument: Any, command: str, expected: list[Any]
) -> None:
    header = f"; filament_type = {header_material}\n" if header_material else ""
    # PrusaSlicer writes the material in the footer, after the temperatures: order must not matter.
    a = analyze_text(f"G28\n{command}\nG1 X1 E1\n{header}", material=argument)
    assert [(f.command, f.severity, f.rule) for f in a.findings] == expected
    if expected:
        assert a.findings[0].line == 2


def test_a_repeated_temperature_is_reported_once(analyze_text: Analyze) -> None:
    a = analyze_text("M104 S250\nM104 S250\nM109 S250\n", material="PLA")
    assert [f.line for f in a.findings] == [1]


@pytest.mark.parametrize(
    ("moves", "rules", "lines"),
    [
        ("G1 Z-0.5", {}, [2]),
        ("G1 Z-0.03", {}, []),
        ("G1 Z-0.03", {"z_tolerance_mm": 0}, [2]),
        ("G1 Z0", {"z_tolerance_mm": 0}, []),
        ("G91\nG1 Z-1", {}, [3]),
        ("G3 X1 Y1 Z-1 I1 J0", {}, [2]),
    ],
)
def test_moves_below_the_bed(
    analyze_text: Analyze, moves: str, rules: dict[str, Any], lines: list[int]
) -> None:
    a = analyze_text(f"G28\n{moves}\n", rules=SafetyRules.from_dict(rules))
    assert [(f.line, f.rule, f.severity) for f in a.findings] == [
        (n, "below-bed", Severity.WARNING) for n in lines
    ]


def test_one_rule_keeps_its_first_findings_and_counts_the_rest(analyze_text: Analyze) -> None:
    a = analyze_text("G28\n" + "G1 Z-1\nG1 Z1\n" * 100)
    assert len(a.findings) == 20
    assert a.findings_suppressed == 80
    assert a.findings[0].line == 2


def test_the_lab_can_add_and_remove_refused_commands(analyze_text: Analyze) -> None:
    rules = SafetyRules.from_dict({"also_refuse": ["m106"], "allow": ["M502"]})
    assert "M106" in rules.refused_commands and "M502" not in rules.refused_commands
    a = analyze_text("M502\nM106 S255\n", rules=rules)
    assert found(a) == [(2, "M106", Severity.REFUSE, "refused-command")]
    assert "a command this lab does not allow" in a.findings[0].message


def test_rules_round_trip_and_merge_like_lab_settings() -> None:
    assert SafetyRules.from_dict(DEFAULT_RULES.to_dict()) == DEFAULT_RULES
    changed = SafetyRules.from_dict(
        {**DEFAULT_RULES.to_dict(), "max_hotend_c": 280, "warning_commands": ["M0"]}
    )
    assert changed.max_hotend_c == 280 and changed.warning_commands == frozenset({"M0"})
    assert SafetyRules.from_dict(changed.to_dict()) == changed
    limits = SafetyRules.from_dict(
        {"material_limits": {"pla": {"hotend_max_c": 230}, "ABS": None, "PEEK": {}}}
    )
    assert limits.material_limits["PLA"].hotend_max_c == 230
    assert limits.material_limits["PLA"].bed_max_c == 70
    assert "ABS" not in limits.material_limits and "PEEK" in limits.material_limits


@pytest.mark.parametrize(
    ("data", "option"),
    [
        ({"max_hotend": 300}, "max_hotend"),
        ({"max_hotend_c": "hot"}, "max_hotend_c"),
        ({"max_hotend_c": 9000}, "max_hotend_c"),
        ({"max_bed_c": True}, "max_bed_c"),
        ({"z_tolerance_mm": -1}, "z_tolerance_mm"),
        ({"max_line_length": 1.5}, "max_line_length"),
        ({"refused_commands": "M502"}, "refused_commands"),
        ({"refused_commands": ["M502", "drop table"]}, "refused_commands"),
        ({"also_refuse": [5]}, "also_refuse"),
        ({"material_limits": []}, "material_limits"),
        ({"material_limits": {"PLA": {"hotend_max_c": -5}}}, "material_limits.PLA.hotend_max_c"),
        ({"material_limits": {"PLA": {"nozzle": 200}}}, "material_limits.PLA"),
    ],
)
def test_bad_rules_name_the_option(data: dict[str, Any], option: str) -> None:
    with pytest.raises(Invalid) as info:
        SafetyRules.from_dict(data)
    assert info.value.field == option
    assert option.split(".")[0] in info.value.message
