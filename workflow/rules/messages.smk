# What a run says at its end, after Snakemake's own lines: what was made, or the one-line
# errors of the jobs that failed (read from their logs), so that they are the last on screen.
import atexit
import contextlib
import time

from abc_downsample import run_messages
from abc_downsample.atomic import remove_orphans
from abc_downsample.errors import few

# When this run started: logs modified since then were written by its jobs.
RUN_STARTED = time.time()
# The working directory the paths are relative to (Snakemake leaves it before exiting).
RUN_DIR = os.getcwd()


def dry_run_note():
    """After a dry-run's job list (no hook runs in a dry-run): what it cannot know before
    sampling, or which matrices the sample needs."""
    if workflow.dryrun and workflow.scheduler is not None:
        with contextlib.chdir(RUN_DIR):
            lines = run_messages.dry_run_lines(
                dry_run_matrices(), os.path.exists(OUT["cells"])
            )
        run_messages.print_lines(lines)


if workflow.is_main_process:
    atexit.register(dry_run_note)


onstart:
    # temporary files of writers killed earlier (pids are per host: local runs only)
    if workflow.local_exec:
        remove_orphans(OUT["dir"])


onsuccess:
    if missing := missing_targets():
        run_messages.say_last(
            [
                f"abc-downsample: error: the run ended without {few(missing)}: "
                "rerun the same command; report it if it happens again"
            ]
        )
        sys.exit(1)
    if any(job.rule.name == "plan" for job in workflow.dag.targetjobs):
        # `snakemake plan`: the plan is the answer, made now or earlier
        run_messages.say_last(run_messages.plan_lines(PLAN["text"]))
    else:
        run_messages.say_last(
            run_messages.success_lines(OUT, config["sampling"]["cluster_column"])
        )


onerror:
    run_messages.say_last(
        run_messages.stale_result_lines(OUT, SUBSETS)
        + run_messages.failure_lines(LOGS, RUN_STARTED, log)
    )
