"""The words of a result, as values: what happened to an artifact, why, and what went wrong.

One vocabulary serves plan, build, explain, the console's text and the JSON documents: an `Outcome`
(`built`, `cached`, `retagged`, `failed`, `skipped`; in a plan, what build would do), a `Reason` (a code
from a fixed set with its detail fields) and, for an artifact that failed or was skipped because one it
requires failed, a `Failure` (a code, the message for people and the artifacts it names). Text for people
is made from these values (`str()`); scripts read the codes (documents.py). Pure and free of imports
from the rest of the package, so every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """What happened to an artifact (or, in a plan, what would). A str: `Outcome.BUILT == "built"`."""

    BUILT = "built"
    CACHED = "cached"
    RETAGGED = "retagged"
    FAILED = "failed"
    SKIPPED = "skipped"


DONE = (Outcome.BUILT, Outcome.CACHED, Outcome.RETAGGED)  # an image stands under IMAGE:HASH


class Why(StrEnum):
    """Why an artifact has its outcome: the fixed set of reason codes (docs/json.md)."""

    FOUND = "found"  # cached: IMAGE:HASH is in the registry (`reference`)
    SAME_INPUTS = "sameInputs"  # retagged: another reference carries this hash's image (`reference`: from where)
    NO_IMAGE = "noImage"  # built: no image and no index entry for this hash
    STALE_ENTRY = "staleEntry"  # built: the index entry's images are gone from the registry
    NO_CACHE = "noCache"  # built: --no-cache
    OTHER_SHARE = "otherShare"  # cached: built by another share of the plan (`share`)
    UNSUPPORTED = "unsupported"  # skipped: a builder regless lacks, left out by --skip-unsupported (`builder`)
    REQUIRES_LEFT_OUT = "requiresLeftOut"  # skipped: requires artifacts --skip-unsupported left out (`requires`)


@dataclass(frozen=True)
class Reason:
    """A reason code and its detail; `str()` is the sentence a person reads."""

    code: Why
    reference: str | None = None
    share: str | None = None
    builder: str | None = None
    requires: tuple[str, ...] = ()

    def __str__(self) -> str:
        return {
            Why.FOUND: f"found {self.reference}",
            Why.SAME_INPUTS: f"from {self.reference} (same inputs)",
            Why.NO_IMAGE: "no image for this hash",
            Why.STALE_ENTRY: "its image is gone from the registry (the index entry is stale)",
            Why.NO_CACHE: "--no-cache: build everything",
            Why.OTHER_SHARE: f"built by share {self.share}",
            Why.UNSUPPORTED: f"a {self.builder} artifact: regless cannot build it (--skip-unsupported)",
            Why.REQUIRES_LEFT_OUT: f"requires {', '.join(self.requires)}, which --skip-unsupported left out",
        }[self.code]


class Fault(StrEnum):
    """What went wrong with an artifact: the fixed set of error codes (docs/json.md). An error class of
    errors.py names its code in its `code` attribute."""

    BUILD_FAILED = "buildFailed"  # the builder failed, or its push was not served afterwards
    REGISTRY_FAILED = "registryFailed"  # the registry answered with an error
    REGISTRY_UNREACHABLE = "registryUnreachable"  # the registry could not be reached within the deadline
    REGISTRY_REFUSED = "registryRefused"  # 401/403
    SHARE_TIMED_OUT = "shareTimedOut"  # --share: another share's image did not appear in time
    REQUIRED_FAILED = "requiredFailed"  # skipped: an artifact it requires failed (`requires`)
    ERROR = "error"  # any other error


@dataclass(frozen=True)
class Failure:
    """An error code, the message for people (with its hint) and, for `requiredFailed`, the artifacts."""

    code: Fault
    message: str
    requires: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message

    @classmethod
    def of(cls, exc: Exception, message: str | None = None) -> Failure:
        """The failure an exception stands for: its class's `code` (errors.py), `message` or its text."""
        try:
            code = Fault(getattr(exc, "code", Fault.ERROR))
        except ValueError:
            code = Fault.ERROR
        return cls(code, str(exc) if message is None else message)

    @classmethod
    def required(cls, failed: tuple[str, ...]) -> Failure:
        """Skipped because `failed` (artifacts it requires) failed or were skipped."""
        return cls(Fault.REQUIRED_FAILED, f"requires {', '.join(failed)}, which failed", requires=failed)
