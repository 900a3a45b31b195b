"""LibreOffice Calc (headless) for the workbook tests: convert report.xlsx, read each sheet as Calc shows it."""
from __future__ import annotations

import csv
import subprocess
from pathlib import Path

# Calc's CSV filter: comma, double quote, UTF-8, from line 1, ..., cells as shown, each sheet to its own file.
CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"


def convert(libreoffice: str, source: Path, target: str, out: Path) -> None:
    profile = out / "lo-profile"  # its own profile: no shared state, no first-start dialogs
    done = subprocess.run(
        [libreoffice, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
         "--convert-to", target, "--outdir", str(out), str(source)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def sheet(out: Path, name: str) -> list[list[str]]:
    with open(out / f"report-{name}.csv", encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))
