"""The one error the lab tool reports: a sentence for the operator, never a traceback."""


class LabError(Exception):
    """Something the operator must fix; the message says what and how."""
