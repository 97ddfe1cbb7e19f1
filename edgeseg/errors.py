"""The one exception type for user mistakes: the CLI prints it in one line, no traceback."""


class EdgesegError(Exception):
    """A user error (bad file, bad recipe key, missing checkpoint...). Message names the file and fix."""


def nearest_key(key: str, valid) -> str:
    """Suggest the closest valid key, for 'unknown key' messages."""
    import difflib

    match = difflib.get_close_matches(key, list(valid), n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""


def os_errors(exc: BaseException):
    """Every OSError in `exc`'s cause/context chain, outermost first (libraries re-raise the system's
    error under their own message: pydicom wraps write errors, the runner wraps them in EdgesegError)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError):
            yield exc
        exc = exc.__cause__ or exc.__context__


def require(module: str, needs: str):
    """The imported optional `module`, or a one-line EdgesegError `needs` (what needs it and the pip extra)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EdgesegError(needs) from exc


def system_words(exc: BaseException) -> str:
    """The operating system's words for an OSError, also when a library re-raised it with its own
    message (pydicom wraps write errors with the tag and a traceback text)."""
    return next((e.strerror for e in os_errors(exc) if e.strerror), None) or first_line(exc)


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its type name when empty), at most `limit` characters:
    what a one-line reason quotes from a library's error."""
    lines = str(exc).strip().splitlines()
    return (lines[0].strip() if lines else type(exc).__name__)[:limit]
