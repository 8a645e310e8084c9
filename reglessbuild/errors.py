"""One error tree for regless.

    ReglessError
    ├── InputError            bad input from the user: exit 2
    │   ├── ConfigError       regless.yaml / skaffold.yaml (carries file:line)
    │   ├── DockerfileError   a Dockerfile (carries file:line)
    │   └── ToolMissing       buildah / skopeo / crane not on PATH
    ├── RegistryError         the registry could not answer: exit 3
    │   ├── RegistryUnreachable   transient faults that outlived the retries
    │   └── RegistryAuthError     401/403: not retried
    ├── BuildError            one artifact failed to build or push: exit 1
    ├── forked.ChildDied      a hashing process died without an answer: exit 1
    └── IndexError_           the local index could not be used: exit 2

Only cli.py turns these into exit codes and messages.
"""

from __future__ import annotations


class ReglessError(Exception):
    """Base of every error regless raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class InputError(ReglessError):
    exit_code = 2


class Located(InputError):
    """An input error at a place in a file."""

    def __init__(self, message: str, *, path: str, line: int | None = None, hint: str | None = None) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}", hint=hint)
        self.path = path
        self.line = line


class ConfigError(Located):
    pass


class DockerfileError(Located):
    pass


class ToolMissing(InputError):
    pass


class RegistryError(ReglessError):
    exit_code = 3


class RegistryUnreachable(RegistryError):
    pass


class RegistryAuthError(RegistryError):
    pass


class BuildError(ReglessError):
    exit_code = 1

    def __init__(self, message: str, *, tail: tuple[str, ...] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.tail = tail


class IndexError_(ReglessError):  # noqa: N801 - the builtin IndexError is taken
    exit_code = 2
