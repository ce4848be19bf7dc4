"""One error wrapper for kubesmith's filter plugins (controller side only)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from ansible.errors import AnsibleFilterError


def filter_errors(
    *errors: type[Exception],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Report these input errors as AnsibleFilterError, keeping the message that names the field.

    The message starts with the filter function's name: `nth_ip: index: expected ...`.
    """

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except errors as exc:
                raise AnsibleFilterError(f"{function.__name__}: {exc}") from exc

        return wrapper

    return decorate
