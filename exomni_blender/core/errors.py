"""The one error root. Every error raised for a person derives from `ExOmniError`: its message already
says what went wrong and what to do, so the panel, the CLI and the server show it as it is, with no
traceback. Anything else that escapes is a bug and is reported as one."""


class ExOmniError(Exception):
    """Bad input or an unusable environment, explained for the person who can fix it."""


class UserError(ExOmniError, ValueError):
    """A request that cannot be made as asked (a field out of range, a missing file, ...)."""


class TakeFormatError(ExOmniError, ValueError):
    """A take folder, blendshape file or audio file that cannot be read; the message says why."""
