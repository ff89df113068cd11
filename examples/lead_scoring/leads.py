"""A seeded generator of realistic synthetic marketing leads.

Shaped like the public X Education lead data (``shared/data/x_education_leads.csv``): the same column names and
category frequencies, numbers written the way that file writes them (``"5.0"``), and its mess: empty cells,
``Select`` placeholders where a form was left at its default, odd casing (``google``), a few garbled numbers and a
few leads without an id. ``Converted`` is drawn from a hidden propensity, so models trained on one sample score
another meaningfully.

    python examples/lead_scoring/leads.py 100000 leads.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ID = "Prospect ID"
COLUMNS = [
    ID,
    "Lead Origin",
    "Lead Source",
    "Do Not Email",
    "TotalVisits",
    "Total Time Spent on Website",
    "Page Views Per Visit",
    "Last Activity",
    "What is your current occupation",
    "City",
    "Converted",
]

_ORIGINS = (["Landing Page Submission", "API", "Lead Add Form", "Lead Import"], [0.53, 0.39, 0.073, 0.007])
_SOURCES = (
    [
        "Google",
        "Direct Traffic",
        "Olark Chat",
        "Organic Search",
        "Reference",
        "Welingak Website",
        "Referral Sites",
        "Facebook",
        "",
        "google",
        "bing",
    ],
    [0.31, 0.275, 0.19, 0.125, 0.058, 0.015, 0.0135, 0.006, 0.004, 0.002, 0.001],
)
_ACTIVITIES = (
    [
        "Email Opened",
        "SMS Sent",
        "Olark Chat Conversation",
        "Page Visited on Website",
        "Converted to Lead",
        "Email Bounced",
        "Email Link Clicked",
        "Form Submitted on Website",
        "",
        "Unreachable",
        "Unsubscribed",
        "Had a Phone Conversation",
    ],
    [0.372, 0.297, 0.105, 0.069, 0.046, 0.035, 0.029, 0.0125, 0.011, 0.01, 0.0065, 0.007],
)
_OCCUPATIONS = (
    ["Unemployed", "", "Working Professional", "Student", "Select", "Other", "Housewife", "Businessman"],
    [0.59, 0.27, 0.076, 0.023, 0.03, 0.005, 0.003, 0.003],
)
_CITIES = (
    [
        "Mumbai",
        "Select",
        "",
        "Thane & Outskirts",
        "Other Cities",
        "Other Cities of Maharashtra",
        "Other Metro Cities",
        "Tier II Cities",
    ],
    [0.349, 0.243, 0.154, 0.081, 0.074, 0.05, 0.041, 0.008],
)


def _pick(rng: np.random.Generator, table: tuple[list[str], list[float]], n: int) -> np.ndarray:
    values, weights = table
    p = np.asarray(weights, dtype=float)
    return rng.choice(np.asarray(values, dtype=object), size=n, p=p / p.sum())


def generate_leads(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` leads as a DataFrame of strings (as read from a CSV file), reproducible for a given ``seed``."""
    rng = np.random.default_rng(seed)
    origin = _pick(rng, _ORIGINS, n)
    source = _pick(rng, _SOURCES, n)
    activity = _pick(rng, _ACTIVITIES, n)
    occupation = _pick(rng, _OCCUPATIONS, n)
    city = _pick(rng, _CITIES, n)
    no_email = rng.random(n) < 0.08
    engagement = rng.normal(0.0, 1.0, n)

    visits = rng.poisson(np.exp(0.95 + 0.45 * engagement)).astype(float)
    visits[origin == "Lead Add Form"] = 0
    seconds = np.where(visits > 0, rng.lognormal(5.4 + 0.5 * engagement, 1.0), 0.0)
    seconds = np.minimum(np.round(seconds), 2272)
    views = np.where(visits > 0, np.round(np.minimum(visits, 1 + rng.gamma(1.6, 0.9, n)), 2), 0.0)

    logit = (
        -1.6
        + 0.9 * engagement
        + 0.0011 * seconds
        + 2.4 * (occupation == "Working Professional")
        + 1.1 * (source == "Reference")
        + 2.2 * (origin == "Lead Add Form")
        + 0.9 * (activity == "SMS Sent")
        - 1.2 * (activity == "Email Bounced")
        - 1.0 * no_email
        - 0.6 * (occupation == "Student")
    )
    converted = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))

    visits_text = np.char.mod("%.1f", visits).astype(object)
    views_text = np.char.mod("%.2f", views).astype(object)
    views_text = np.array([t.rstrip("0").rstrip(".") if "." in t else t for t in views_text], dtype=object)
    gone = rng.random(n) < 0.015  # the form left the visit numbers empty
    visits_text[gone] = ""
    views_text[gone] = ""
    garbled = rng.random(n) < 0.0005  # typed by hand
    visits_text[garbled] = rng.choice(np.array(["n/a", "several", "3 or 4"], dtype=object), size=int(garbled.sum()))

    raw = rng.integers(0, 2**63 - 1, size=(n, 2), dtype=np.int64)
    ids = np.array([f"{a:016x}{b:016x}" for a, b in raw.tolist()], dtype=object)
    ids = np.array([f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}" for h in ids], dtype=object)
    ids[rng.random(n) < 0.0002] = ""  # a lead that lost its id on the way

    return pd.DataFrame(
        {
            ID: ids,
            "Lead Origin": origin,
            "Lead Source": source,
            "Do Not Email": np.where(no_email, "Yes", "No"),
            "TotalVisits": visits_text,
            "Total Time Spent on Website": seconds.astype(np.int64).astype(str),
            "Page Views Per Visit": views_text,
            "Last Activity": activity,
            "What is your current occupation": occupation,
            "City": city,
            "Converted": converted.astype(np.int64).astype(str),
        },
        columns=COLUMNS,
        dtype=object,
    )


def write_leads(path: str | Path, n: int, seed: int = 0) -> Path:
    """Write ``n`` leads to a CSV file; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    generate_leads(n, seed).to_csv(path, index=False)
    return path


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    target = sys.argv[2] if len(sys.argv) > 2 else "leads.csv"
    print(write_leads(target, count))
