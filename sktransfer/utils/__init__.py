"""Validation, torch helpers and estimator discovery."""

from sktransfer.utils.discovery import all_estimators

__all__ = ["all_estimators"]
