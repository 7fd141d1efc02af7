"""Audit a dataset: likely label errors, outliers, near-duplicates, leakage; fix with an undo."""

from imagefit.audit.auditing import AuditResult, audit
from imagefit.audit.findings import Finding
from imagefit.audit.fix import FixResult, fix, undo
from imagefit.audit.fix_table import TableFix
from imagefit.audit.labels import label_issue_count, mislabelled_count

__all__ = [
    "AuditResult",
    "Finding",
    "FixResult",
    "TableFix",
    "audit",
    "fix",
    "label_issue_count",
    "mislabelled_count",
    "undo",
]
