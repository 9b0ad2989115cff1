"""The task data model: TaskSet, support/query sampling and splits."""

from sktransfer.tasks._taskset import TaskSet

__all__ = ["TaskSet"]
