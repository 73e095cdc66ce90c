"""Run one job through ``jobs.run_job`` with checkpoints, SIGKILLing this very process at
the K-th checkpoint save (after it, or in the middle of the write: between writing the
temporary file and renaming it). Used by test_checkpoint.py to kill a job at a chosen epoch
the way a machine would, then rerun it.

    python killable_job.py JOB_JSON CHECKPOINT_DIR KILL_AT {after,mid-write} OUT_JSON
"""
import json
import os
import signal
import sys

from nas_eval import checkpoint, jobkinds, jobs  # noqa: F401  (jobkinds registers the kinds)


def main():
    job, ckdir, kill_at, where, out = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    saves = [0]
    real_save, real_replace = checkpoint.Checkpoint.save, os.replace

    def replace(src, dst):
        if where == "mid-write" and dst.endswith(checkpoint.SUFFIX) and saves[0] + 1 == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # the temporary file is written, not renamed
        real_replace(src, dst)

    def save(self, state):
        real_save(self, state)
        saves[0] += 1
        if where == "after" and saves[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    checkpoint.Checkpoint.save = save
    checkpoint.os.replace = replace
    payload = jobs.run_job(job["kind"], job["params"], 1, None, ckdir)
    with open(out, "w") as f:
        f.write(jobs.to_json(payload))


if __name__ == "__main__":
    main()
