"""Small KEV and EPSS files in the real formats, written by the tests (the public feeds are not
reachable from CI)."""
from __future__ import annotations

import json
from pathlib import Path


def kev_doc(entries: dict[str, tuple[str, bool]], *, released: str = "2026-05-03T14:00:00.000Z") -> dict:
    """entries: CVE → (dueDate, known ransomware use), as the CISA catalogue writes them."""
    return {
        "title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": "2026.05.03",
        "dateReleased": released,
        "count": len(entries),
        "vulnerabilities": [
            {"cveID": cve, "vendorProject": "Example", "product": "Example", "vulnerabilityName": f"{cve} flaw",
             "dateAdded": "2026-04-01", "shortDescription": "exploited", "requiredAction": "Apply updates.",
             "dueDate": due, "knownRansomwareCampaignUse": "Known" if ransomware else "Unknown",
             "notes": "", "cwes": []}
            for cve, (due, ransomware) in entries.items()],
    }


def write_kev(path: Path, entries: dict[str, tuple[str, bool]], *, released: str = "2026-05-03T14:00:00.000Z") -> Path:
    path.write_text(json.dumps(kev_doc(entries, released=released)))
    return path


def epss_text(scores: dict[str, float], *, score_date: str = "2026-05-03T00:00:00+0000") -> str:
    lines = [f"#model_version:v2025.03.14,score_date:{score_date}", "cve,epss,percentile"]
    lines += [f"{cve},{score:.5f},{min(1.0, score + 0.1):.5f}" for cve, score in scores.items()]
    return "\n".join(lines) + "\n"


def write_epss(path: Path, scores: dict[str, float], *, score_date: str = "2026-05-03T00:00:00+0000") -> Path:
    path.write_text(epss_text(scores, score_date=score_date))
    return path
