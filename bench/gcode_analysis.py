"""G-code analysis: ours beside OctoPrint's gcodeInterpreter on the real slicer files.

Run ``.venv/bin/python bench/gcode_analysis.py``. Reads ``../shared/gcode/*.gcode`` beside the
checkout (or ``$CROWDFAB_SHARED_GCODE``). Prints, per file: best-of-N CPU time for each (CPU time,
so other work on a shared machine disturbs the ratio less), the speed ratio, the peak memory each
adds (peak RSS, Linux VmHWM, in a fresh subprocess), and whether bounds and filament length agree.
Then it shows memory staying flat on a file 8 times the largest sample.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.tables import print_header  # noqa: E402
from fleet.gcode import Analysis, analyze_path  # noqa: E402

REPEATS = 3


def shared_gcode_dir() -> Path:
    override = os.environ.get("CROWDFAB_SHARED_GCODE")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "shared" / "gcode"


def octoprint_result(path: Path) -> dict[str, Any]:
    from octoprint.util.gcodeInterpreter import gcode

    g = gcode(progress_callback=None)
    g.load(str(path))
    result: dict[str, Any] = g.get_result()
    return result


def best_times(ours: Callable[[], object], octo: Callable[[], object]) -> tuple[float, float]:
    """Best CPU time of each over REPEATS rounds, the two taking turns."""
    best_ours = best_octo = float("inf")
    for _ in range(REPEATS):
        start = time.process_time()
        ours()
        best_ours = min(best_ours, time.process_time() - start)
        start = time.process_time()
        octo()
        best_octo = min(best_octo, time.process_time() - start)
    return best_ours, best_octo


def peak_mib(tool: str, path: Path) -> float:
    """Peak resident memory one analysis adds, in a fresh interpreter (imports excluded)."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", tool, str(path)], check=True, capture_output=True, text=True
    )
    return float(json.loads(out.stdout)["peak_kib"]) / 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(tool: str, path: Path) -> None:
    import octoprint.util.gcodeInterpreter  # noqa: F401  (imports count for neither tool)

    # Reset the peak (VmHWM) to the current size, so the peak afterwards is the analysis's own.
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    if tool == "ours":
        analyze_path(path)
    else:
        octoprint_result(path)
    print(json.dumps({"peak_kib": _status_kib("VmHWM") - before}))


def agreement(ours: Analysis, octo: dict[str, Any]) -> tuple[bool, bool]:
    area = octo["printing_area"]
    b = ours.bounds
    if b is None:
        return area["minX"] is None, False
    # OctoPrint floors its lowest Z at the bed (load(bed_z=0.0)); we report the real lowest extrusion.
    pairs = [
        (b.min_x, area["minX"]),
        (b.min_y, area["minY"]),
        (min(b.min_z, 0.0), area["minZ"]),
        (b.max_x, area["maxX"]),
        (b.max_y, area["maxY"]),
        (b.max_z, area["maxZ"]),
    ]
    bounds_ok = all(abs(a - o) <= 0.01 for a, o in pairs)
    filament_ok = abs(ours.filament_length_mm - octo["extrusion_length"][0]) <= 0.1
    return bounds_ok, filament_ok


def main() -> int:
    folder = shared_gcode_dir()
    files = sorted(folder.glob("*.gcode"))
    if not files:
        print(f"no sample files in {folder} (set CROWDFAB_SHARED_GCODE)", file=sys.stderr)
        return 2
    print(f"G-code analysis, best of {REPEATS} (CPU s): fleet.gcode vs OctoPrint gcodeInterpreter ({folder})")
    header = (
        f"{'file':<28}{'lines':>8}{'MB':>6}{'ours s':>9}{'µs/line':>9}{'octo s':>9}{'speed-up':>10}"
        f"{'ours MiB':>10}{'octo MiB':>10}  {'bounds':<8}{'filament':<9}"
    )
    print_header(header)
    worst = float("inf")
    for path in files:
        ours = analyze_path(path)
        octo = octoprint_result(path)
        t_ours, t_octo = best_times(lambda p=path: analyze_path(p), lambda p=path: octoprint_result(p))
        m_ours = peak_mib("ours", path)
        m_octo = peak_mib("octoprint", path)
        bounds_ok, filament_ok = agreement(ours, octo)
        worst = min(worst, t_octo / t_ours)
        print(
            f"{path.name:<28}{ours.line_count:>8}{path.stat().st_size / 1e6:>6.1f}{t_ours:>9.3f}"
            f"{t_ours / ours.line_count * 1e6:>9.2f}{t_octo:>9.3f}{t_octo / t_ours:>9.1f}x"
            f"{m_ours:>10.1f}{m_octo:>10.1f}  {'agree' if bounds_ok else 'DIFFER':<8}"
            f"{'agree' if filament_ok else 'DIFFER':<9}"
        )
    print(f"slowest speed-up: {worst:.1f}x (target: at least 4x)")

    largest = max(files, key=lambda p: p.stat().st_size)
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / f"8x_{largest.name}"
        data = largest.read_bytes()
        with big.open("wb") as out:
            for _ in range(8):
                out.write(data)
        start = time.process_time()
        analyze_path(big)
        t_big = time.process_time() - start
        print(
            f"memory stays flat: peak {peak_mib('ours', largest):.2f} MiB on {largest.name} "
            f"({len(data) / 1e6:.1f} MB), {peak_mib('ours', big):.2f} MiB on the same file 8 times "
            f"({big.stat().st_size / 1e6:.1f} MB, analysed in {t_big:.2f} s CPU)"
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]))
        sys.exit(0)
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    sys.exit(main())
