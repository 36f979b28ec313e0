"""What a run prints: our warnings reach the terminal as one line each, library chatter
does not, and a failed run ends with the one-line error of the job that failed.

End to end with the real snakemake against the moto S3 server; the full run's line count
and end summary are checked in test_report.py, on the run the report is made from.
"""

import os
import subprocess
import sys
import textwrap
import time

from conftest import ERROR, PROJECT

from abc_downsample import run_messages


def test_package_warnings_reach_the_terminal_and_library_chatter_does_not(tmp_path):
    script = textwrap.dedent("""
        import logging, sys
        from abc_downsample.rule_io import setup_logging
        import anndata  # its logger prints "... storing 'x' as categorical" to stderr
        setup_logging(sys.argv[1])
        logging.getLogger("anndata").info("... storing 'x' as categorical")
        logging.getLogger("abc_downsample.sampling.sample").warning("taking all\\n of them")
        logging.getLogger("abc_downsample.sampling.sample").info("a detail for the log")
        logging.getLogger("h5py").warning("a library warning")
    """)
    log = tmp_path / "rule.log"
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "scripts")}
    result = subprocess.run(
        [sys.executable, "-c", script, str(log)], capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["abc-downsample: warning: taking all of them"]
    logged = log.read_text()
    assert "taking all" in logged and "a detail for the log" in logged
    assert "a library warning" in logged  # library records stay in the rule log


def test_failure_lines_are_the_errors_of_logs_written_in_this_run(tmp_path):
    old, new = tmp_path / "logs" / "old.log", tmp_path / "logs" / "sub" / "new.log"
    new.parent.mkdir(parents=True)
    old.write_text(f"2026 ERROR {ERROR} an error of an earlier run\n")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    new.write_text(f"2026 INFO reading\n2026 ERROR {ERROR} the cells file is bad: fix it\n")
    started = time.time() - 60
    lines = run_messages.failure_lines(tmp_path / "logs", started)
    assert lines == [f"{ERROR} the cells file is bad: fix it"]


def test_failure_lines_fall_back_to_the_failed_rules_of_snakemakes_log(tmp_path):
    snakemake_log = tmp_path / "snakemake.log"
    snakemake_log.write_text(
        "Error in rule concat:\n    jobid: 4\n"
        "    log: data/logs/concat.log (check log file(s) for error details)\n"
    )
    lines = run_messages.failure_lines(tmp_path / "no-logs", time.time(), snakemake_log)
    assert lines == [f"{ERROR} rule concat failed: see its log data/logs/concat.log"]


