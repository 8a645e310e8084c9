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
    ├── hashing.choose.NativeMissing  REGLESS_REQUIRE_NATIVE=1 and the C part not built: exit 1
    └── IndexError_           the local index could not be used: exit 2

Only cli.py turns these into exit codes and messages.
"""

from __future__ import annotations


class ReglessError(Exception):
    """Base of every error regless raises on purpose."""

    exit_code = 1
    code = "error"  # outcomes.Fault: what a failed artifact's JSON `error.code` says

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class InputError(ReglessError):
    """Something the user gave is wrong (a file, a flag, a missing tool): exit 2, and the message says what,
    where and how to fix it, so the run stops before building anything."""

    exit_code = 2


class Located(InputError):
    """An input error at a place in a file."""

    def __init__(self, message: str, *, path: str, line: int | None = None, hint: str | None = None) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}", hint=hint)
        self.path = path
        self.line = line


class ConfigError(Located):
    """regless.yaml or skaffold.yaml is wrong at path:line (a key, a value, a reference between artifacts)."""


class DockerfileError(Located):
    """A Dockerfile regless must read to hash the inputs (COPY/ADD sources, FROM) is wrong at path:line."""


class ToolMissing(InputError):
    """buildah, skopeo, crane or kaniko's executor is not where regless looks: an input error (install it or
    choose another tool), not a build failure."""


class RegistryError(ReglessError):
    """The registry did not answer what regless asked: exit 3, kept apart from exit 1 so that CI can tell a
    broken build from a registry that was down."""

    exit_code = 3
    code = "registryFailed"


class RegistryUnreachable(RegistryError):
    """Transient faults (5xx, 429, resets, timeouts) went on until the retry layer's deadline ran out."""

    code = "registryUnreachable"


class RegistryAuthError(RegistryError):
    """The registry refused the credentials (401/403): never retried, since asking again cannot help."""

    code = "registryRefused"


class BuildError(ReglessError):
    """One artifact failed to build or push: exit 1. `tail` carries the last lines of the tool's log, so the
    message shows why without the user opening the log file."""

    exit_code = 1
    code = "buildFailed"

    def __init__(self, message: str, *, tail: tuple[str, ...] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.tail = tail


class IndexError_(ReglessError):  # noqa: N801 - the builtin IndexError is taken
    """The local index (the cache dir's LMDB store) cannot be opened or created: exit 2, since the fix is the
    user's (a path that is not a folder, no permission)."""

    exit_code = 2
