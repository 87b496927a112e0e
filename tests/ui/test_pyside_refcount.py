"""Regression test for the PySide6 6.12.0 defect: it corrupts the reference counts of None and
bool on Python 3.11, and the process crashes once a count reaches zero. We pin <6.12; this test
catches a release with the defect (or a broken pin) before users do."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version

PROBE = r"""
import sys
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QCheckBox

class Emitter(QObject):
    value = Signal(object)
    flag = Signal(bool)

app = QApplication([])
box = QCheckBox()
emitter = Emitter()
received = []
emitter.value.connect(lambda v: received.append(v))
emitter.flag.connect(lambda v: received.append(v))

def counts():
    return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)

for _ in range(1000):  # warm up caches first
    box.setChecked(True); box.isChecked(); box.setChecked(False); box.isChecked()
received.clear()
before = counts()
for _ in range(50_000):
    box.setChecked(True)
    box.isChecked()
    box.setChecked(False)
    box.isChecked()
    box.setProperty("p", None)
    box.property("p")
    emitter.value.emit(None)
    emitter.flag.emit(True)
    emitter.flag.emit(False)
received.clear()
after = counts()
print(before, after)
drift = [abs(a - b) for a, b in zip(after, before)]
sys.exit(0 if max(drift) < 1000 else 3)
"""


def test_pinned_below_6_12() -> None:
    major, minor = (int(p) for p in version("PySide6-Essentials").split(".")[:2])
    assert (major, minor) < (6, 12), "PySide6 6.12.0 crashes on Python 3.11; keep the pin"


def test_none_and_bool_refcounts_survive_many_qt_calls() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, (
        f"refcounts drifted or the process crashed (rc={result.returncode}): "
        f"{result.stdout} {result.stderr[-2000:]}"
    )
