"""The README's quoted run output and docs/report.png are what the runs show now (issue
22, finding 8: a screenshot of a rule that no longer exists, an `auto` line no demo ever
printed): docs/make_docs.py makes them, and its check reruns the demo and compares."""

import subprocess
import sys

from conftest import PROJECT


def test_the_quoted_output_and_the_screenshot_are_current():
    result = subprocess.run([sys.executable, str(PROJECT / "docs" / "make_docs.py"), "--check"],
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
