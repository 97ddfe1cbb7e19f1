"""The one exception type for user mistakes: the CLI prints it in one line, no traceback."""


class EdgesegError(Exception):
    """A user error (bad file, bad recipe key, missing checkpoint...). Message names the file and fix."""


def nearest_key(key: str, valid) -> str:
    """Suggest the closest valid key, for 'unknown key' messages."""
    import difflib

    match = difflib.get_close_matches(key, list(valid), n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""
