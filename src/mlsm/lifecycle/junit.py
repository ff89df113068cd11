"""JUnit XML, the report format CI servers read (Jenkins' ``junit`` step, GitHub Actions test reporters).

One ``<testsuite>`` for a ``mlsm test`` invocation; one ``<testcase>`` per model and check (``preflight``, and
``golden`` when the model has a golden file), with a ``<failure>`` holding the full detail when it failed.
"""

from __future__ import annotations

import os
import re
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Case", "write_junit"]

# characters XML 1.0 cannot hold at all, even escaped (generated inputs may contain them)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


@dataclass
class Case:
    """One test case: ``classname`` groups it (the model source), ``name`` says what was checked."""

    classname: str
    name: str
    seconds: float
    failure: str | None = None  # one-line message
    detail: str = ""  # the full text shown by the CI server


def write_junit(path: Path, cases: Sequence[Case], *, suite: str = "mlsm test") -> None:
    """Write ``cases`` as a JUnit XML file at ``path`` (folders created as needed)."""
    failures = sum(1 for case in cases if case.failure is not None)
    root = ET.Element("testsuites", name=suite, tests=str(len(cases)), failures=str(failures), errors="0")
    element = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{sum(case.seconds for case in cases):.3f}",
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
        hostname=socket.gethostname(),
    )
    for case in cases:
        item = ET.SubElement(
            element,
            "testcase",
            classname=_xml_text(case.classname),
            name=_xml_text(case.name),
            time=f"{case.seconds:.3f}",
        )
        if case.failure is not None:
            failure = ET.SubElement(item, "failure", message=_xml_text(case.failure), type="mlsm.preflight")
            failure.text = _xml_text(case.detail or case.failure)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    tree.write(temporary, encoding="utf-8", xml_declaration=True)
    os.replace(temporary, path)
