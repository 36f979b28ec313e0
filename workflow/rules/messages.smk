# What a run says at its end, after Snakemake's own lines: what was made, or the one-line
# errors of the jobs that failed (read from their logs), so that they are the last on screen.
import time

from abc_downsample import run_messages

# When this run started: logs modified since then were written by its jobs.
RUN_STARTED = time.time()


onsuccess:
    run_messages.say_last(
        run_messages.success_lines(OUT, config["sampling"]["cluster_column"])
    )


onerror:
    run_messages.say_last(run_messages.failure_lines(LOGS, RUN_STARTED, log))
