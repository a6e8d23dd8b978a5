"""`forecaster run`: every stage in order, from CSV to shipped bundle and report, resumable."""

from forecaster.job.run import JobOutcome, JobRequest, StageError, run_job

__all__ = ["JobOutcome", "JobRequest", "StageError", "run_job"]
